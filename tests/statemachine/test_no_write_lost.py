"""No acknowledged write is lost: the freeze fits or is refused, the copy back carries only what the
switched writers wrote, nothing a client could have written is cleared (the real ASL, the real
handlers, the ElastiCache stand-in and the sandbox's Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.migration import LocalSetup
from redis_migration_ops.rehearsal.sandbox_redis import write_client_keys
from tests.statemachine.conftest import differences, leftovers
from tests.statemachine.test_bake_in_the_workflow import BAKE_MINUTES, traffic


@contextmanager
def elasticache(setup: LocalSetup) -> Iterator[Any]:
    assert setup.elasticache is not None
    client = redis.Redis(**setup.elasticache.connection_kwargs())
    try:
        yield client
    finally:
        client.close()


@contextmanager
def self_hosted(setup: LocalSetup) -> Iterator[Any]:
    password = setup.password()
    assert password is not None
    host, port = setup.sandbox.loopback_address(6379)
    client = redis.Redis(host=host, port=port, password=password)
    try:
        yield client
    finally:
        client.close()


def test_a_freeze_longer_than_max_freeze_seconds_is_refused_before_any_change(setup: LocalSetup) -> None:
    # Given ElastiCache with keys, and a writer whose invocations may run for 900 s (Lambda's most)
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(50)
    slow = setup.account.client_functions[1]
    setup.engine.client("lambda").update_function_configuration(FunctionName=slow, Timeout=900)
    before = setup.snapshot()

    # When a consistent migration is asked for with the default bound of 300 s
    run = setup.run({"dataCopy": "consistent"}, name="freeze-too-long")

    # Then it is refused before anything changes, naming the writer, its timeout and the ways on
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = json.loads(run.described["cause"])["errorMessage"]
    assert f"{slow}'s timeout" in cause
    assert "900 s for the invocations already running" in cause
    assert "maxFreezeSeconds" in cause
    assert '"dataCopy": "warm"' in cause
    assert "FreezeWriters" not in run.states_entered
    assert setup.snapshot() == before


def test_the_copy_back_keeps_what_others_wrote_and_names_what_both_changed(setup: LocalSetup) -> None:
    # Given a consistent migration whose bake regresses; during the bake the switched writers write
    # on the self-hosted Redis, a client the run did not switch writes on ElastiCache, and both
    # write one key
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(200)
    traffic(setup, failing=(setup.account.client_functions[0],))
    wrote: list[bool] = []

    def during_bake(record: WaitRecord) -> None:
        if record.state_name != "WaitForBake" or wrote:
            return
        with self_hosted(setup) as here, elasticache(setup) as there:
            here.set("order:1", "placed by a switched writer")
            here.set("shared", "switched writer's value")
            there.set("audit:1", "written by a cron job on ElastiCache")
            there.set("shared", "cron job's value")
        wrote.append(True)

    setup.engine.on_wait(during_bake)
    before = setup.snapshot()

    # When the bake's regression rolls the migration back
    run = setup.run({"dataCopy": "consistent", "bakeMinutes": BAKE_MINUTES}, name="copy-back-others")
    after = setup.snapshot()

    # Then the switched writer's write is on ElastiCache and the other client's is untouched
    assert wrote
    with elasticache(setup) as there:
        assert there.get("order:1") == b"placed by a switched writer"
        assert there.get("audit:1") == b"written by a cron job on ElastiCache"
        assert there.get("shared") == b"cron job's value"
    # And the key both wrote is kept on both sides and named: the rollback needs a person
    with self_hosted(setup) as here:
        assert here.get("shared") == b"switched writer's value"
    assert run.described["error"] == "RollbackFailed", run.described.get("cause")
    named = " ".join(leftovers(run))
    assert "both changed 1 key(s) since the cutover" in named
    assert "db0:shared (created on both sides since the cutover)" in named
    assert "1 of its 202 keys are missing or different on ElastiCache (first: db0:shared)" in named
    assert f"{setup.account.private_ip}:6379" in named
    # And the functions, their concurrency and the rules are as before
    changed = differences(before, after)
    assert "(elasticache)" in changed
    assert {"(host)", "(elasticache)"} >= set(changed), changed


def test_a_warm_rollback_keeps_and_names_what_the_first_wave_wrote(setup: LocalSetup) -> None:
    # Given warm canary waves: the first wave's function writes on the self-hosted Redis during its
    # bake, then the second wave's cutover fails
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(100)
    traffic(setup)
    wrote: list[int] = []

    def during_bake(record: WaitRecord) -> None:
        if record.state_name == "WaitForBake" and not wrote:
            password = setup.password()
            assert password is not None
            wrote.append(write_client_keys(setup.sandbox, password, 30, prefix="first-wave"))

    setup.engine.on_wait(during_bake)
    setup.engine.fail_at("CutOverFunction", 3)

    # When the migration rolls back
    run = setup.run(
        {"dataCopy": "warm", "cutoverWaves": [1, "100%"], "bakeMinutes": 2}, name="warm-waves-write"
    )

    # Then nothing the first wave wrote was cleared: it stays where it is, named by place and key
    assert wrote
    assert "NextWave" in run.states_entered
    assert run.described["error"] == "RollbackFailed", run.described.get("cause")
    named = " ".join(leftovers(run))
    assert f"self-hosted Redis {setup.account.private_ip}:6379" in named
    assert "30 of its" in named
    assert "first-wave:" in named
    with self_hosted(setup) as here:
        assert len(list(here.scan_iter(match="first-wave:*", count=1000))) == 30


def test_a_rollback_later_copies_back_the_soaks_writes_and_a_re_migration_copies_afresh(
    setup: LocalSetup,
) -> None:
    # Given a consistent migration, then a soak: the switched writers write on the self-hosted
    # Redis while another client writes on ElastiCache
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(200)
    migrated = setup.run({"dataCopy": "consistent"}, name="consistent-then-soak")
    assert migrated.described["status"] == "SUCCEEDED", migrated.described.get("cause")
    assert migrated.output["data"]["baseline"] is not None
    with self_hosted(setup) as here, elasticache(setup) as there:
        here.set("soak:order", "written during the soak")
        there.set("soak:other", "another client's write")

    # When the migration is rolled back days later
    rollback = setup.run({"rollbackOf": migrated.execution_arn}, name="rollback-later-copies")

    # Then the writers were frozen, their writes copied back, and only then restored
    assert rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause")
    entered = rollback.states_entered
    assert (
        entered.index("RefreezeWriters") < entered.index("CopyDataBack") < entered.index("RestoreFunctions")
    )
    with elasticache(setup) as there:
        assert there.get("soak:order") == b"written during the soak"
        assert there.get("soak:other") == b"another client's write"
    # And the self-hosted Redis no longer holds a stale copy
    with self_hosted(setup) as here:
        assert here.dbsize() == 0

    # When the team migrates again
    again = setup.run({"dataCopy": "consistent"}, name="consistent-again")

    # Then the data is copied afresh, with everything written meanwhile
    assert again.described["status"] == "SUCCEEDED", again.described.get("cause")
    with self_hosted(setup) as here:
        assert here.get("soak:order") == b"written during the soak"
        assert here.get("soak:other") == b"another client's write"


def test_a_function_whose_restore_failed_stays_frozen_rather_than_write_to_the_self_hosted_redis(
    setup: LocalSetup,
) -> None:
    # Given a consistent migration whose bake regresses, and one function's restore fails
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(50)
    traffic(setup, failing=(setup.account.client_functions[0],))
    setup.engine.fail_at("RestoreFunction", 1)

    # When it rolls back
    run = setup.run({"dataCopy": "consistent", "bakeMinutes": BAKE_MINUTES}, name="restore-fails-frozen")

    # Then the function still on the self-hosted Redis keeps reserved concurrency 0, and is named
    assert run.described["error"] == "RollbackFailed"
    on_self_hosted = [
        name
        for name in setup.account.client_functions
        if setup.engine.client("lambda")
        .get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        .get("REDIS_HOST")
        == setup.account.private_ip
    ]
    assert len(on_self_hosted) == 1
    (stuck,) = on_self_hosted
    concurrency = setup.engine.client("lambda").get_function_concurrency(FunctionName=stuck)
    assert concurrency.get("ReservedConcurrentExecutions") == 0
    assert any(f"function {stuck}: still points to the self-hosted Redis" in line for line in leftovers(run))


def test_reserved_concurrency_is_named_only_where_it_differs(setup: LocalSetup) -> None:
    # Given a consistent run whose every freeze batch fails before it changes anything (no function
    # is frozen), and the way back's thaw of a batch fails too
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(50)
    for k in range(1, len(setup.account.client_functions) + 1):
        setup.engine.fail_at("FreezeFunction", k)
    setup.engine.fail_at("RestoreFunctionConcurrency", 1)
    before = setup.snapshot()

    # When it rolls back
    run = setup.run({"dataCopy": "consistent"}, name="thaw-of-unfrozen-batch-fails")
    after = setup.snapshot()

    # Then the check after the thaw reads every function: nothing differs, nothing is left to do
    assert "VerifyWriterConcurrency" in run.states_entered
    assert before == after, differences(before, after)
    assert run.described["error"] != "RollbackFailed", leftovers(run)
