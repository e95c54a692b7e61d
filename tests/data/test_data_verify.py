"""Verification: every difference found and named, sampling above the limit, the digest the same
inside Redis (Lua) and read in chunks (Python)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis_migration.data.compare import KeyState, read_key_state
from redis_migration.data.copy import copy_data
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink, Script, lua_source
from redis_migration.data.verify import (
    DataMismatch,
    VerifyProgress,
    VerifySettings,
    raise_if_mismatched,
    verify_data,
)

from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from tests.data.conftest import Side

NO_AUTH = Credentials(username=None, password=None)
KEY_STATE_OF_ONE_KEY = Script(
    name="one-key-state",
    body=lua_source("key_state.lua")
    + "\nlocal kind, expiry, digest = key_state(ARGV[1])\nreturn {kind, expiry, digest}",
)


def verify_until_done(source: Side, target: Side, **kwargs: Any) -> VerifyProgress:
    progress: VerifyProgress | None = None
    for _ in range(10_000):
        progress = verify_data(
            source.endpoint,
            source.credentials,
            target.endpoint,
            target.credentials,
            progress=progress,
            **kwargs,
        )
        if progress.done:
            return progress
        progress = VerifyProgress.model_validate(json.loads(json.dumps(progress.to_json_dict())))
    raise AssertionError("the verification did not finish")


@pytest.fixture
def copied(elasticache: ElastiCacheEndpoint, source: Side, target_side: Side) -> int:
    """The stand-in seeded with 2,000 keys, copied to the target."""
    elasticache.seed_keys(2000, seed=11)
    progress = copy_data(source.endpoint, source.credentials, target_side.endpoint, target_side.credentials)
    assert progress.done
    return 2000


def test_every_kind_of_difference_is_counted_and_named(copied: int, source: Side, target_side: Side) -> None:
    # Given a copy, then on the target: a key deleted, a value changed, a type changed, a TTL moved;
    # and on the source a key about to expire that the target no longer has
    target: Any = target_side.admin
    target.delete("seed:string:4")
    target.set("seed:string:5", "other")
    target.delete("seed:list:66")
    target.set("seed:list:66", "not a list")
    target.hset("seed:hash:52", "f0", "other")
    target.pexpire("seed:string:6", 30_000)
    source.admin.pexpire("seed:string:8", 20_000)
    target.delete("seed:string:8")
    # When the whole dataset is verified (in small invocations), TTLs equal within a minute
    settings = VerifySettings(batch_keys=100, ttl_tolerance_ms=60_000)
    progress = verify_until_done(source, target_side, time_budget_s=0.001, settings=settings)
    # Then each difference is counted, and named
    counters = progress.counters
    assert counters.checked == copied - 1  # seed:string:8 expired as its TTL said
    assert counters.expired == 1
    assert counters.missing == 1
    assert counters.type_mismatches == 1
    assert counters.value_mismatches == 2
    assert counters.ttl_mismatches == 1
    assert not progress.ok
    named = {(p.key, p.reason) for p in progress.problems}
    assert named == {
        ("seed:string:4", "missing"),
        ("seed:string:5", "value"),
        ("seed:list:66", "type"),
        ("seed:hash:52", "value"),
        ("seed:string:6", "ttl"),
    }
    assert not counters.counts_equal
    with pytest.raises(
        DataMismatch, match="1 missing, 1 of another type, 2 with another value, 1 with another TTL"
    ):
        raise_if_mismatched(progress)


def test_large_keys_are_compared_in_chunks_on_both_sides(
    copied: int, source: Side, target_side: Side
) -> None:
    # Given limits that send almost every collection and long string to the chunked path
    settings = VerifySettings(max_elements=3, max_string=64)
    # When the copy is verified, Then it is found equal
    progress = verify_until_done(source, target_side, settings=settings)
    assert progress.ok, progress.summary()
    assert progress.counters.checked == copied
    # And a change inside a large collection is found there too
    target: Any = target_side.admin
    big_hash = next(k for k in target.scan_iter(match="seed:hash:*") if target.hlen(k) > 100)
    target.hset(big_hash, "f7", "other")
    progress = verify_until_done(source, target_side, settings=settings)
    assert progress.counters.value_mismatches == 1


def test_the_script_and_the_chunked_reading_compute_the_same_digest(
    elasticache: ElastiCacheEndpoint, source: Side
) -> None:
    # Given every type, small and multi-megabyte
    elasticache.seed_keys(400, seed=12)
    admin: Any = source.admin
    with source.link() as link:
        for key in admin.scan_iter(count=1000):
            # When the Lua digest is computed with limits large enough to read the key at once
            kind, expiry, digest = link.script(KEY_STATE_OF_ONE_KEY, key, link.expiry_command, 10**6, 10**8)
            # Then the chunked reading in Python answers the same
            expected = KeyState(kind.decode(), int(expiry), bytes(digest))
            assert read_key_state(link, key, chunk=7) == expected, key


def test_above_the_limit_a_uniform_sample_is_compared(copied: int, source: Side, target_side: Side) -> None:
    # Given a limit of 500 keys and a sample of 200 for a source of 2,000
    settings = VerifySettings(full_check_limit=500, sample_size=200)
    # When verified
    progress = verify_until_done(source, target_side, settings=settings)
    # Then about a tenth of the keys were compared, all of them scanned
    counters = progress.counters
    assert counters.sampled
    assert counters.sample_fraction == pytest.approx(0.1)
    assert 120 <= counters.checked <= 300
    assert counters.scanned == copied
    assert progress.ok


def test_counts_per_database_are_compared(source: Side, target_side: Side) -> None:
    source.admin.set("a", 1)
    target: Any = target_side.admin
    target.set("a", 1)
    target.set("only-here", 1)
    progress = verify_until_done(source, target_side)
    assert progress.counters.source_keys == {"0": 1}
    assert progress.counters.target_keys == {"0": 2}
    assert not progress.counters.counts_equal
    # The per-key comparison goes from the source: nothing missing or different there
    assert progress.ok


def test_verification_writes_nothing(copied: int, source: Side, target_side: Side) -> None:
    written = ("set", "del", "unlink", "restore", "hset", "expire", "pexpire", "persist", "flushall")

    def write_calls(client: Any) -> dict[str, int]:
        stats = client.info("commandstats")
        return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in written}

    before = (write_calls(source.admin), write_calls(target_side.admin))
    verify_until_done(source, target_side)
    assert (write_calls(source.admin), write_calls(target_side.admin)) == before


def test_a_link_is_named_redis_migration(source: Side) -> None:
    with RedisLink(source.endpoint, source.credentials) as link:
        assert link.command("CLIENT", "GETNAME") == b"redis-migration"


def test_a_compact_encoding_on_one_side_only_still_compares_equal(
    tmp_path: Any, elasticache: ElastiCacheEndpoint, source: Side
) -> None:
    # Given a target that keeps every hash and set as a hash table (no listpack, no intset), so the
    # source's compact hashes and sets come back in another order there
    flat = ElastiCacheEndpoint(
        tmp_path / "flat",
        ["flat.local"],
        auth_token=None,
        tls=False,
        parameters={"hash-max-listpack-entries": "0", "set-max-intset-entries": "0"},
    )
    elasticache.seed_keys(500, seed=13)
    with flat:
        target = Side(
            RedisEndpoint(host="127.0.0.1", port=flat.loopback_port), NO_AUTH, flat.connection_kwargs()
        )
        copy_data(source.endpoint, source.credentials, target.endpoint, target.credentials)
        assert target.admin.object("encoding", "seed:hash:51") == b"hashtable"
        # When verified, Then equal: those keys were compared order-free, in chunks
        progress = verify_until_done(source, target)
        assert progress.ok, progress.summary()
        assert progress.counters.checked == 500
        # And a real difference in such a key is still found
        target.admin.hset("seed:hash:51", "f0", "other")
        assert verify_until_done(source, target).counters.value_mismatches == 1
