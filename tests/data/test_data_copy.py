"""The copy, from the ElastiCache stand-in (TLS, AUTH token, restricted commands renamed away) to a
self-hosted-like Redis: exact, resumable, bounded in memory, and never a restricted command."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
import redis
from redis_migration.data.copy import (
    CopySettings,
    TargetOutOfMemory,
    copy_data,
)
from redis_migration.data.link import (
    Credentials,
    RedisAccessDenied,
    RedisEndpoint,
    RedisLink,
    RedisUnavailable,
)
from redis_migration.data.verify import verify_data

from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from tests.data.conftest import Side, copy_until_done
from tests.data.oracle import differences, snapshot

# What the copy, the verification and the changes pass may run on the source (INFO commandstats
# names the commands scripts call too): reads, read-only scripts, the connection's setup.
SOURCE_COMMANDS = {
    "auth", "client|setname", "client|id", "select", "info", "eval", "evalsha", "scan", "time",
    "pttl", "dump", "type", "getrange", "strlen", "llen", "hlen", "scard", "zcard", "xlen",
    "lrange", "hgetall", "smembers", "zrange", "xrange", "hscan", "sscan", "zscan", "exists",
    "multi", "exec", "pexpiretime", "object|encoding", "get", "memory|usage",
    # PING: the copy's wait for a source to answer again, and ElastiCache's own monitoring
    # connections (local_engine/elasticache/monitoring.py)
    "ping",
}  # fmt: skip


def command_calls(client: Any) -> dict[str, int]:
    """Calls per command so far (INFO commandstats counts the commands scripts call too)."""
    return {
        name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()
    }


def commands_called_since(client: Any, before: dict[str, int]) -> set[str]:
    return {name for name, calls in command_calls(client).items() if calls > before.get(name, 0)}


def test_a_copy_of_the_seeded_mix_is_exact(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side
) -> None:
    # Given the stand-in seeded with every type, TTLs, binary names and multi-MB keys
    seeded = elasticache.seed_keys(3000, seed=1)
    before = command_calls(source.admin)
    # When the copy runs to the end, and the verification after it
    progress = copy_until_done(source, target_side, time_budget_s=60)
    verified = verify_data(source.endpoint, source.credentials, target_side.endpoint, target_side.credentials)
    # Then the source saw only reads and read-only scripts: nothing ElastiCache restricts, no error
    assert commands_called_since(source.admin, before) <= SOURCE_COMMANDS
    assert source.admin.info("errorstats") == {}
    # And every key is on the target, as it is on the source (read independently)
    source_data, target_data = snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs)
    assert differences(source_data, target_data, ttl_tolerance_ms=0) == []
    assert len(target_data) == seeded.keys
    assert sum(1 for _, key in target_data if key.startswith(b"seed:bin:\x00\xff\r\n")) == seeded.binary_names
    assert sum(1 for _, _, expiry in target_data.values() if expiry != -1) == seeded.with_ttl
    counters = progress.counters
    assert counters.restored == seeded.keys
    assert counters.large == len(seeded.large_keys) == 3
    assert counters.gone == 0
    # And the verification agrees: nothing missing or different, TTLs to the millisecond
    assert verified.done
    assert verified.ok, verified.summary()
    assert verified.counters.checked == seeded.keys
    assert verified.counters.max_ttl_drift_ms == 0
    assert verified.counters.counts_equal


def test_the_copy_resumes_across_invocations_with_a_tiny_budget(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side
) -> None:
    elasticache.seed_keys(1500, seed=2)
    # When each invocation may work for a millisecond (one batch each) on batches of 50 keys
    progress = copy_until_done(source, target_side, time_budget_s=0.001, settings=CopySettings(batch_keys=50))
    # Then it took many invocations, each resuming where the previous one stopped, and nothing is lost
    assert progress.counters.invocations > 10
    assert progress.counters.batches >= progress.counters.invocations
    assert (
        differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs), ttl_tolerance_ms=5)
        == []
    )


def test_keys_in_several_databases_go_to_the_same_database(source: Side, target_side: Side) -> None:
    for db in (0, 3, 15):
        admin = redis.Redis(**{**source.admin_kwargs, "db": db})
        for i in range(20):
            admin.set(f"db{db}:{i}", i)
    progress = copy_until_done(source, target_side)
    assert progress.databases == [0, 3, 15]
    assert differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs)) == []


def test_batches_split_by_size_and_large_keys_alone_stay_exact(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side
) -> None:
    # Given small limits: a batch stops dumping at 64 KiB, a payload above 2 KiB is copied alone
    elasticache.seed_keys(800, seed=3)
    settings = CopySettings(max_batch_bytes=64 * 1024, max_payload_bytes=2048, batch_keys=1000)
    progress = copy_until_done(source, target_side, settings=settings)
    # Then keys went the large way, batches were cut short, and the copy is still exact
    assert progress.counters.large > 5
    assert progress.counters.deferred > 100
    assert (
        differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs), ttl_tolerance_ms=5)
        == []
    )


def test_memory_stays_bounded_whatever_the_key_count(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side
) -> None:
    def peak_for(count: int) -> int:
        target_side.admin.flushall()
        elasticache.seed_keys(count, seed=4, large_keys=0)
        tracemalloc.start()
        try:
            copy_until_done(source, target_side, settings=CopySettings(batch_keys=500))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # Given 2,000 then 20,000 keys, When each is copied, Then the Python heap's peak stays the same
    # size (a batch at a time), not ten times larger
    small, large = peak_for(2_000), peak_for(20_000)
    assert large < 2 * small + 1024 * 1024, (small, large)
    assert large < 16 * 1024 * 1024


def test_changes_mode_makes_the_target_equal_to_the_source(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side
) -> None:
    # Given a full copy, then writes on the source and a stray key on the target
    elasticache.seed_keys(2000, seed=5)
    copy_until_done(source, target_side)
    admin: Any = source.admin
    admin.set("seed:string:0", "changed")  # a value
    admin.delete("seed:string:1")  # a deletion
    admin.pexpire("seed:string:2", 7_200_000)  # a TTL
    admin.delete("seed:hash:50")
    admin.rpush("seed:hash:50", "now a list")  # a type
    admin.set("brand-new", "key")  # an addition
    admin.hset("seed:hash:51", "f0", "other")  # inside a collection
    target_side.admin.set("only-on-target", "1")
    before = command_calls(source.admin)
    # When only the changes are copied (with the smallest budget: resumable too)
    progress = copy_until_done(source, target_side, mode="changes", time_budget_s=0.001)
    assert commands_called_since(source.admin, before) <= SOURCE_COMMANDS
    assert source.admin.info("errorstats") == {}
    # Then the target is the source again
    assert (
        differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs), ttl_tolerance_ms=5)
        == []
    )
    # The value, the TTL, the type, the addition, the field; the deletion and the stray key are extras
    assert progress.counters.changed == 5
    assert progress.counters.extra == 2
    assert progress.counters.compared >= 2000


def test_a_reverse_copy_writes_back_to_elasticache(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side
) -> None:
    # Given a migrated dataset and writes on the self-hosted Redis after the cutover
    elasticache.seed_keys(500, seed=6)
    copy_until_done(source, target_side)
    target_side.admin.set("written-after-cutover", "1")
    target_side.admin.delete("seed:string:0")
    # When the changes are copied back (the endpoints swapped)
    progress = copy_until_done(target_side, source, mode="changes")
    # Then ElastiCache holds them, through RESTORE and DEL only
    assert source.admin.get("written-after-cutover") == b"1"
    assert not source.admin.exists("seed:string:0")
    assert progress.counters.changed + progress.counters.extra == 2
    assert source.admin.info("errorstats") == {}


def test_the_source_needs_tls_and_its_token(source: Side, target_side: Side, auth_token: str) -> None:
    plaintext = source.endpoint.model_copy(update={"tls": False})
    with pytest.raises(RedisUnavailable):
        copy_data(plaintext, source.credentials, target_side.endpoint, target_side.credentials)
    with pytest.raises(RedisAccessDenied):
        copy_data(
            source.endpoint,
            Credentials(None, auth_token[::-1]),
            target_side.endpoint,
            target_side.credentials,
        )
    with pytest.raises(RedisAccessDenied):
        copy_data(source.endpoint, Credentials(None, None), target_side.endpoint, target_side.credentials)


def test_a_target_out_of_memory_is_named_and_evicts_nothing(
    tmp_path: Any, elasticache: ElastiCacheEndpoint, source: Side
) -> None:
    # Given a target of 2 MB that refuses writes when full (noeviction)
    small = ElastiCacheEndpoint(
        tmp_path / "small",
        ["small.local"],
        auth_token=None,
        tls=False,
        maxmemory="2mb",
        parameters={"maxmemory-policy": "noeviction"},
    )
    elasticache.seed_keys(2000, seed=7)
    with small:
        target = RedisEndpoint(host="127.0.0.1", port=small.loopback_port)
        # When the copy runs, Then it stops with TargetOutOfMemory naming a key
        with pytest.raises(TargetOutOfMemory, match=r"key '.+': OOM"):
            copy_data(source.endpoint, source.credentials, target, Credentials(None, None))


def test_a_refused_restore_names_the_key(source: Side, target_side: Side) -> None:
    # Given a target whose user may not RESTORE
    admin: Any = source.admin
    admin.set("blocked", "1")
    target_admin: Any = target_side.admin
    target_admin.execute_command("ACL", "SETUSER", "copier", "on", ">pw", "~*", "+@all", "-restore")
    # When the copy runs, Then it stops naming the key and the server's reason
    with pytest.raises(RedisAccessDenied, match=r"key 'blocked': NOPERM"):
        copy_data(source.endpoint, source.credentials, target_side.endpoint, Credentials("copier", "pw"))


def test_a_connection_broken_mid_copy_is_survived(
    elasticache: ElastiCacheEndpoint, source: Side, target_side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a target connection that breaks while the 3rd batch's replies are read
    elasticache.seed_keys(3000, seed=8, large_keys=0)
    original = RedisLink.read_simple_replies
    calls = {"n": 0}

    def flaky(link: RedisLink, count: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            link.close()
            raise redis.ConnectionError("connection reset by peer (injected)")
        return original(link, count)

    monkeypatch.setattr(RedisLink, "read_simple_replies", flaky)
    # When one invocation copies everything
    progress = copy_data(
        source.endpoint, source.credentials, target_side.endpoint, target_side.credentials,
        time_budget_s=60, settings=CopySettings(batch_keys=100),
    )  # fmt: skip
    # Then it reconnected, redid the broken batch, and finished exact
    assert progress.done
    assert calls["n"] > 30
    assert (
        differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs), ttl_tolerance_ms=5)
        == []
    )
