"""The data preflight's rules: each refusal and warning, named by its code."""

import pytest
from redis_migration.data.preflight import (
    BigKey,
    DataFinding,
    ServerDataFacts,
    evaluate,
    known_rdb_version,
    rdb_version_of,
)

MIB = 1024**2


def facts(**overrides: object) -> ServerDataFacts:
    base: dict[str, object] = {
        "server": "redis",
        "version": "7.0.15",
        "rdb_version": 10,
        "used_memory": 120 * MIB,
        "used_memory_dataset": 100 * MIB,
        "maxmemory": 512 * MIB,
        "maxmemory_policy": "allkeys-lru",
        "keys_by_db": {"0": 1000},
        "max_db": 15,
    }
    return ServerDataFacts.model_validate(base | overrides)


def codes(findings: list[DataFinding]) -> list[str]:
    return [f.code for f in findings]


def test_the_rdb_version_is_read_from_the_bytes_before_the_checksum() -> None:
    # A DUMP of SET k v on Redis 7.0: type 0, "v", version 10 (0a 00), then the CRC64
    payload = bytes.fromhex("00017600") + b"\x0a\x00" + bytes(8)
    assert rdb_version_of(payload) == 10
    assert rdb_version_of(b"\x00\x01v" + b"\x0b\x00" + bytes(8)) == 11
    with pytest.raises(ValueError, match="not a DUMP payload"):
        rdb_version_of(b"short")


@pytest.mark.parametrize(
    ("server", "version", "rdb"),
    [
        ("redis", "7.0.15", 10),
        ("redis", "7.2.4", 11),
        ("redis", "7.4.1", 12),
        ("valkey", "8.0.1", 11),
        ("redis", "6.2.14", 9),
        ("redis", "5.0.6", None),
        ("redis", "", None),
    ],
)
def test_known_versions(server: str, version: str, rdb: int | None) -> None:
    assert known_rdb_version(server, version) == rdb


def test_a_source_the_target_reads_passes_every_rule() -> None:
    verdict = evaluate(facts(maxmemory_policy="allkeys-lru"), facts(), copy_back=True)
    assert verdict.ok
    assert verdict.refusals == []
    assert verdict.warnings == []


def test_a_newer_dump_version_is_refused() -> None:
    # Valkey 8 on ElastiCache (RDB 11) into Debian 12's Redis 7.0 (reads <= 10)
    source = facts(server="valkey", version="8.0.1", rdb_version=11)
    verdict = evaluate(source, facts())
    assert codes(verdict.refusals) == ["DumpVersionUnsupported"]
    assert "reads up to 10" in verdict.refusals[0].message


def test_a_target_without_a_readable_version_uses_its_release() -> None:
    target = facts(rdb_version=None, server="valkey", version="8.0.1")
    assert evaluate(facts(rdb_version=11), target).ok
    assert codes(evaluate(facts(rdb_version=12), target).refusals) == ["DumpVersionUnsupported"]
    unknown = facts(rdb_version=None, version="9.9.9")
    assert codes(evaluate(facts(), unknown).warnings) == ["DumpVersionUnknown"]


def test_copying_back_needs_the_source_to_read_the_target() -> None:
    # ElastiCache 7.0 (RDB 10) and a Valkey 8 target (RDB 11): fine forwards, not backwards
    source, target = facts(rdb_version=10), facts(server="valkey", version="8.0.1", rdb_version=11)
    assert evaluate(source, target).ok
    assert codes(evaluate(source, target, copy_back=True).refusals) == ["ReverseCopyUnsupported"]


@pytest.mark.parametrize(
    ("dataset", "policy", "refusal", "warning", "words"),
    [
        (470, "allkeys-lru", "DataDoesNotFit", None, "allkeys-lru would silently evict"),
        (470, "noeviction", "DataDoesNotFit", None, "fail half-way with OOM"),
        (400, "allkeys-lru", None, "DataFillHigh", "78%"),
        (300, "allkeys-lru", None, None, ""),
    ],
)
def test_the_dataset_against_maxmemory(
    dataset: int, policy: str, refusal: str | None, warning: str | None, words: str
) -> None:
    source = facts(used_memory_dataset=dataset * MIB, maxmemory_policy=policy)
    verdict = evaluate(source, facts(maxmemory_policy=policy))
    assert codes(verdict.refusals) == ([refusal] if refusal else [])
    assert codes(verdict.warnings) == ([warning] if warning else [])
    if words:
        assert words in (verdict.refusals + verdict.warnings)[0].message


def test_no_maxmemory_is_a_warning() -> None:
    verdict = evaluate(facts(), facts(maxmemory=0))
    assert codes(verdict.warnings) == ["NoMaxmemory"]


def test_big_keys_warn_and_keys_restore_cannot_take_are_refused() -> None:
    source = facts(
        big_keys=[
            BigKey(db=0, key="audio:cache", bytes=600 * MIB),
            BigKey(db=0, key="campaign:1:calls", bytes=40 * MIB),
        ],
        sampled_keys=1000,
    )
    verdict = evaluate(source, facts())
    assert codes(verdict.refusals) == ["KeyTooLarge"]
    assert "audio:cache" in verdict.refusals[0].message
    assert codes(verdict.warnings) == ["BigKeys"]
    assert "campaign:1:calls" in verdict.warnings[0].message


@pytest.mark.parametrize(
    ("source_policy", "target_policy", "words"),
    [
        ("volatile-lru", "allkeys-lru", "keys without a TTL"),
        ("allkeys-lru", "noeviction", "refuses writes"),
        ("allkeys-lru", "allkeys-lfu", "a different set of keys"),
    ],
)
def test_eviction_policies_that_differ_warn(source_policy: str, target_policy: str, words: str) -> None:
    verdict = evaluate(facts(maxmemory_policy=source_policy), facts(maxmemory_policy=target_policy))
    assert verdict.ok
    assert codes(verdict.warnings) == ["EvictionPolicyDiffers"]
    assert words in verdict.warnings[0].message


def test_a_cluster_mode_source_is_refused() -> None:
    assert codes(evaluate(facts(cluster_enabled=True), facts()).refusals) == ["ClusterModeSource"]


def test_a_database_the_target_lacks_is_refused() -> None:
    verdict = evaluate(facts(keys_by_db={"0": 1, "20": 5}), facts(max_db=15))
    assert codes(verdict.refusals) == ["DatabaseOutOfRange"]
    assert "[20]" in verdict.refusals[0].message


def test_every_refusal_at_once_is_named() -> None:
    source = facts(
        cluster_enabled=True,
        rdb_version=12,
        used_memory_dataset=600 * MIB,
        keys_by_db={"0": 1, "31": 1},
        big_keys=[BigKey(db=0, key="x", bytes=700 * MIB)],
    )
    verdict = evaluate(source, facts(), copy_back=True)
    assert set(codes(verdict.refusals)) == {
        "ClusterModeSource",
        "DatabaseOutOfRange",
        "DumpVersionUnsupported",
        "DataDoesNotFit",
        "KeyTooLarge",
    }


def test_a_key_the_copy_function_could_not_hold_is_refused_by_name() -> None:
    # Given a sampled key of 400 MiB and a 1,024 MB copy function: (1024 - 160) / 3 = 288 MiB at most
    source = facts(big_keys=[BigKey(db=0, key="session:blob", bytes=400 * MIB)])
    # When the rules run with the function's memory, Then the key is refused by name and size
    verdict = evaluate(source, facts(), copy_function_mb=1024)
    assert codes(verdict.refusals) == ["KeyTooLarge"]
    message = verdict.refusals[0].message
    assert "'session:blob' (db 0, 400.0 MiB)" in message
    assert "1024 MB" in message
    assert "MaxDataFunctionMemory" in message
    # And with 2,048 MB the same key fits (a BigKeys warning only)
    assert evaluate(source, facts(), copy_function_mb=2048).ok


def test_a_replica_source_is_refused() -> None:
    verdict = evaluate(facts(role="slave"), facts())
    assert codes(verdict.refusals) == ["SourceIsReplica"]
    assert evaluate(facts(role="master"), facts()).ok


def test_the_described_engine_names_the_source_and_its_newer_version_decides() -> None:
    from redis_migration.data.preflight import with_described_engine  # noqa: PLC0415
    from redis_migration.models import ElastiCacheSourceFacts  # noqa: PLC0415

    # Given a server answering Redis 7.0 (RDB 10) that ElastiCache describes as Valkey 8.0 (RDB 11),
    # as a rehearsal's stand-in does for an account file's Valkey source
    group = ElastiCacheSourceFacts(replication_group_id="cache", engine="valkey", engine_version="8.0")
    source = with_described_engine(facts(), group)
    # When the target is a Redis 7.0
    verdict = evaluate(source, facts())
    # Then the copy is refused as on AWS, in the API's names, and the difference is said
    assert codes(verdict.refusals) == ["DumpVersionUnsupported"]
    assert "valkey 8.0" in verdict.refusals[0].message
    assert "SourceVersionDiffers" in codes(verdict.warnings)
    # And a described release that agrees with the server changes nothing
    same = ElastiCacheSourceFacts(replication_group_id="cache", engine="redis", engine_version="7.0.7")
    agreed = evaluate(with_described_engine(facts(), same), facts())
    assert agreed.ok
    assert "SourceVersionDiffers" not in codes(agreed.warnings)
