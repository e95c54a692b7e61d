"""The copy and the verification as a production primary needs them (issue 17, points 6 and 7):
no large key DUMPed inside a script, a key the copy function could not hold refused by name before
any DUMP, a failover between invocations restarting the pass, a replica refused as the source."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_migration.data.copy import (
    CopyProgress,
    CopySettings,
    DumpVersionUnsupported,
    KeyTooLargeToCopy,
    SourceIsReplica,
    copy_data,
)
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink
from redis_migration.data.preflight import evaluate, planned_target_facts, read_source_facts
from redis_migration.data.verify import VerifyProgress, verify_data
from redis_migration.steps.copy_data import refuse_an_older_target

from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from tests.data.conftest import Side, copy_until_done
from tests.data.oracle import differences, snapshot

NO_AUTH = Credentials(username=None, password=None)
BIG = 24 * 1024 * 1024


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[ElastiCacheEndpoint]:
    """A plaintext stand-in without a token whose slow log records every command with its arguments."""
    parameters = {"slowlog-log-slower-than": "0", "slowlog-max-len": "100000"}
    with ElastiCacheEndpoint(
        tmp_path / "plain", ["plain.source"], auth_token=None, tls=False, parameters=parameters
    ) as stand_in:
        yield stand_in


def side_of(stand_in: ElastiCacheEndpoint) -> Side:
    return Side(
        RedisEndpoint(host="127.0.0.1", port=stand_in.loopback_port),
        NO_AUTH,
        stand_in.connection_kwargs(socket_timeout=60),
    )


def commands_logged(admin: Any, name: str) -> list[list[bytes]]:
    """The argument lists of every ``name`` command the slow log (threshold 0) recorded."""
    entries = admin.execute_command("SLOWLOG", "GET", "-1")
    found = []
    for entry in entries:
        arguments = [part if isinstance(part, bytes) else str(part).encode() for part in entry[3]]
        if arguments and arguments[0].lower() == name.encode():
            found.append(arguments)
    return found


def seed_big_and_small(admin: Any, small: int = 300) -> None:
    admin.set("big:blob", secrets.token_bytes(BIG))
    pipe = admin.pipeline(transaction=False)
    for n in range(small):
        pipe.set(f"small:{n}", f"value:{n}")
    pipe.execute()


def dump_calls(admin: Any) -> int:
    """DUMPs the server ran so far, inside scripts and out (INFO commandstats counts both)."""
    return int(admin.info("commandstats").get("cmdstat_dump", {}).get("calls", 0))


def test_a_large_key_is_never_dumped_inside_a_script(plain: ElastiCacheEndpoint, target_side: Side) -> None:
    # Given a source with a 24 MiB key among 300 small ones
    source = side_of(plain)
    seed_big_and_small(source.admin, small=300)
    before = dump_calls(source.admin)
    source.admin.execute_command("SLOWLOG", "RESET")
    # When it is copied (large: above 256 KiB)
    progress = copy_until_done(source, target_side)
    # Then the large key was DUMPed once, alone (the slow log records the commands a script calls
    # too): the scripts DUMPed the 300 small keys and only named the large one
    assert progress.counters.large == 1
    dumped = [arguments[1] for arguments in commands_logged(source.admin, "dump")]
    assert dumped.count(b"big:blob") == 1
    assert dump_calls(source.admin) - before == 300 + 1
    assert target_side.admin.strlen("big:blob") == BIG
    assert differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs)) == []


def test_a_key_the_function_could_not_hold_is_refused_by_name_before_its_dump(
    plain: ElastiCacheEndpoint, target_side: Side
) -> None:
    # Given a 24 MiB key and a copy that may hold 8 MiB
    source = side_of(plain)
    seed_big_and_small(source.admin)
    source.admin.execute_command("SLOWLOG", "RESET")
    # When it is copied
    with pytest.raises(KeyTooLargeToCopy) as refused:
        copy_until_done(source, target_side, settings=CopySettings(max_key_bytes=8 * 1024 * 1024))
    # Then the key and its size are named, and it was never DUMPed (nothing of it held)
    assert "'big:blob'" in str(refused.value)
    assert "MiB" in str(refused.value)
    assert b"big:blob" not in [arguments[1] for arguments in commands_logged(source.admin, "dump")]
    assert not target_side.admin.exists("big:blob")


def test_the_copy_functions_memory_bounds_the_largest_key(
    plain: ElastiCacheEndpoint, target_side: Side
) -> None:
    # Given a 24 MiB key; a 128 MB function can hold (128 - 160) / 3 < 0 of it, a 512 MB one 117 MiB
    source = side_of(plain)
    seed_big_and_small(source.admin, small=10)
    with pytest.raises(KeyTooLargeToCopy):
        copy_until_done(source, target_side, memory_mb=128)
    assert copy_until_done(source, target_side, memory_mb=512).counters.large == 1


def test_the_preflight_dumps_only_a_small_key_for_the_version(plain: ElastiCacheEndpoint) -> None:
    # Given a source of 40 keys of 512 KiB and one small key
    source = side_of(plain)
    pipe = source.admin.pipeline(transaction=False)
    for n in range(40):
        pipe.set(f"blob:{n}", secrets.token_bytes(512 * 1024))
    pipe.set("tiny", "1")
    pipe.execute()
    source.admin.execute_command("SLOWLOG", "RESET")
    # When the preflight reads it
    with RedisLink(source.endpoint, source.credentials) as link:
        facts = read_source_facts(link, samples=200)
    # Then it knows the RDB version from the one small key's DUMP, no large key was DUMPed
    assert facts.rdb_version == 10
    assert [arguments[1] for arguments in commands_logged(source.admin, "dump")] == [b"tiny"]
    assert facts.role == "master"


def test_a_failover_between_copy_invocations_restarts_the_pass_and_says_so(
    plain: ElastiCacheEndpoint, target_side: Side
) -> None:
    # Given a copy stopped after one small batch
    source = side_of(plain)
    plain.seed_keys(2_000, seed=31, large_keys=0)
    first = copy_data(
        source.endpoint,
        NO_AUTH,
        target_side.endpoint,
        target_side.credentials,
        time_budget_s=0.001,
        settings=CopySettings(batch_keys=50, max_script_ms=0),
    )
    assert not first.done
    assert first.source_server is not None
    before = first.source_server.run_id
    # When ElastiCache fails over (a new server process behind the same endpoint)
    plain.fail_over()
    assert plain.run_id != before
    # Then the next invocation starts the pass again from the beginning, says why, and the copy is exact
    resumed = CopyProgress.model_validate(json.loads(json.dumps(first.to_json_dict())))
    progress = copy_until_done(source, target_side, resumed)
    assert len(progress.restarts) == 1
    assert "source's server process changed" in progress.restarts[0]
    assert progress.source_server is not None
    assert progress.source_server.run_id == plain.run_id
    assert (
        differences(snapshot(source.admin_kwargs), snapshot(target_side.admin_kwargs), ttl_tolerance_ms=5)
        == []
    )


def test_a_failover_between_verify_invocations_restarts_the_verification(
    plain: ElastiCacheEndpoint, target_side: Side
) -> None:
    # Given a copied source and a verification stopped after its first batch
    source = side_of(plain)
    plain.seed_keys(2_000, seed=32, large_keys=0)
    copy_until_done(source, target_side)
    first = verify_data(
        source.endpoint, NO_AUTH, target_side.endpoint, target_side.credentials, time_budget_s=0.001
    )
    assert not first.done
    # When ElastiCache fails over, then the verification goes on
    plain.fail_over()
    progress: VerifyProgress = VerifyProgress.model_validate(json.loads(json.dumps(first.to_json_dict())))
    for _ in range(1_000):
        progress = verify_data(
            source.endpoint, NO_AUTH, target_side.endpoint, target_side.credentials, progress=progress
        )
        if progress.done:
            break
    # Then it started again (every key counted once), said so, and found the copy exact
    assert progress.ok
    assert len(progress.restarts) == 1
    assert progress.counters.checked == 2_000


def test_a_replica_is_refused_as_the_source(tmp_path: Path, target_side: Side) -> None:
    # Given a group with a replica (what a replica's node endpoint, or the reader endpoint, reaches)
    with ElastiCacheEndpoint(
        tmp_path / "group", ["replica.source"], auth_token=None, tls=False, replicas=1
    ) as group:
        group.seed_keys(50, seed=33, large_keys=0)
        replica = group.nodes[1]
        source = Side(
            RedisEndpoint(host="127.0.0.1", port=replica.loopback_port),
            NO_AUTH,
            group.connection_kwargs(socket_timeout=60, node=1),
        )
        # When it is named as the source, Then the copy refuses it before copying anything
        with pytest.raises(SourceIsReplica, match="role:slave"):
            copy_data(source.endpoint, NO_AUTH, target_side.endpoint, target_side.credentials)
        assert target_side.admin.dbsize() == 0
        # And the preflight refuses it too
        with RedisLink(source.endpoint, source.credentials) as link:
            facts = read_source_facts(link, samples=10)
        verdict = evaluate(
            facts, planned_target_facts(maxmemory=256 * 1024**2, maxmemory_policy="allkeys-lru")
        )
        assert [finding.code for finding in verdict.refusals] == ["SourceIsReplica"]


def test_the_copy_refuses_a_target_older_than_the_source_before_its_first_batch(
    plain: ElastiCacheEndpoint, target_side: Side
) -> None:
    # Given CheckData judged the source Valkey 8.0 (RDB 11) before the target existed
    plain.seed_keys(20, seed=34, large_keys=0)
    # When the first copy slice meets a Redis 7.0 target (RDB 10)
    with pytest.raises(DumpVersionUnsupported, match=r"valkey 8\.0\) writes RDB version 11"):
        refuse_an_older_target(11, "valkey 8.0", target_side.endpoint, target_side.credentials)
    # Then nothing was copied; a source of the target's own version passes
    assert target_side.admin.dbsize() == 0
    refuse_an_older_target(10, "redis 7.0", target_side.endpoint, target_side.credentials)
