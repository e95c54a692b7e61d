"""The data preflight's reads on real servers, and the RDB version rule checked against Redis itself."""

from __future__ import annotations

from typing import Any

import pytest
from redis_migration.data.copy import DumpVersionUnsupported, raise_refusal
from redis_migration.data.link import pack_command
from redis_migration.data.preflight import evaluate, rdb_version_of, read_source_facts, read_target_facts

from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from tests.data.conftest import Side

_CRC64_POLY = 0x95AC9329AC4BC9B5  # Redis's crc64 (Jones), reflected


def crc64(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
    return crc


def with_rdb_version(payload: bytes, version: int) -> bytes:
    """The DUMP payload re-labelled with another RDB version, its checksum made right again."""
    body = payload[:-10] + version.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def test_the_source_is_read_without_a_restricted_command(
    elasticache: ElastiCacheEndpoint, source: Side
) -> None:
    # Given the stand-in with every type and three multi-megabyte keys
    summary = elasticache.seed_keys(3000, seed=21)
    with source.link() as link:
        # RANDOMKEY samples with repeats: 3,000 draws over 3,000 keys see about 63 % of them and
        # miss all three big ones about 5 % of the time; 20,000 draws miss them about 1 in 10^8.
        facts = read_source_facts(link, samples=20_000, big_key_bytes=2 * 1024**2)
    # Then its version, memory and keys are known, and the sampled big keys named
    assert facts.server == "redis"
    assert facts.rdb_version == 10  # Redis 7.0
    assert facts.keys_by_db == {"0": summary.keys}
    assert facts.used_memory_dataset
    assert facts.maxmemory_policy == "volatile-lru"  # ElastiCache's default
    assert not facts.cluster_enabled
    assert facts.sampled_keys > 1000
    assert {key.key for key in facts.big_keys} <= {k.decode() for k in summary.large_keys}
    assert facts.big_keys
    assert source.admin.info("errorstats") == {}


def test_the_target_tells_its_rdb_version_and_databases(target_side: Side) -> None:
    with target_side.link() as link:
        facts = read_target_facts(link)
    assert facts.rdb_version == 10
    assert facts.max_db == 15
    assert facts.maxmemory == 256 * 1024**2
    assert facts.maxmemory_policy == "allkeys-lru"
    # The probe key is gone
    assert target_side.admin.dbsize() == 0


def test_redis_7_0_refuses_a_payload_of_rdb_version_11_as_the_rule_says(target_side: Side) -> None:
    # Given a real DUMP payload, and the same payload labelled RDB 11 (what Redis 7.2 and Valkey 8 write)
    admin: Any = target_side.admin
    admin.set("k", "v")
    payload = bytes(admin.dump("k"))
    assert rdb_version_of(payload) == 10
    newer = with_rdb_version(payload, 11)
    assert rdb_version_of(newer) == 11
    # The relabelled payload with version 10 is accepted: the checksum is right
    admin.restore("k10", 0, with_rdb_version(payload, 10))
    with target_side.link() as link:
        # When it is restored on Redis 7.0
        link.send_raw(pack_command("RESTORE", "k11", 0, newer))
        replies = link.read_simple_replies(1)
    # Then Redis refuses it, and the copy names the refusal
    with pytest.raises(DumpVersionUnsupported, match=r"k11.*payload version"):
        raise_refusal(replies, None, b"k11")
    # And the preflight would have refused it before: source RDB 11, target reads 10
    with target_side.link() as link:
        target = read_target_facts(link)
    source = target.model_copy(update={"rdb_version": 11, "keys_by_db": {"0": 1}})
    assert [f.code for f in evaluate(source, target).refusals] == ["DumpVersionUnsupported"]
