"""The write ledger: clients write through a whole migration, and no acknowledged write is lost.

Each test runs the real workflow with one writer per client function (rehearsal/client_writes.py):
each connects to whatever its function's configuration names at that moment, is throttled while
the function is frozen, and records every acknowledged write. The verdict compares the ledger with
what the ElastiCache stand-in and the sandbox's Redis hold at the end (rehearsal/ledger.py), never
with what the workflow says about itself. Runs are short: a few keys, a few writes a second.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from redis_migration_ops.local_engine import INJECTED_ERROR
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.client_traffic import simulate_client_traffic
from redis_migration_ops.rehearsal.ledger import LedgerVerdict
from redis_migration_ops.rehearsal.migration import LocalSetup, RunResult, WorldSnapshot
from tests.statemachine.conftest import StartWriters, Writers, is_migrated

SEED = 40


def require(condition: bool, message: object = "") -> None:
    """A precondition of the test, not the ledger's verdict: fails the test outright (never an
    expected failure): only the ledger's own assertion can fail the promise."""
    if not condition:
        pytest.fail(f"precondition: {message}")


def refused_first(run: RunResult) -> bool:
    return run.described["status"] == "FAILED" and "CutOverFunctions" not in run.states_entered


def lost_nothing_or_refused(
    run: RunResult, before: WorldSnapshot, after: WorldSnapshot, verdict: LedgerVerdict
) -> None:
    """The issue's done-when: ``lost == 0``, or the run refused before any change and said why."""
    if refused_first(run):
        require(before == after, before.differences(after))
        require(bool(run.described.get("cause")), "a refusal names what it refused")
    assert verdict.lost == 0, verdict.lost_keys


def writes_on_both_sides(verdict_clients: dict[str, Any]) -> bool:
    """Whether some writer wrote to ElastiCache first and then to the self-hosted Redis."""
    return any(len({c["redis"] for c in stats["connections"]}) > 1 for stats in verdict_clients.values())


@pytest.mark.parametrize(
    "execution_input",
    [
        {"dataCopy": "consistent"},
        {"dataCopy": "warm"},
        {"dataCopy": "none"},
    ],
    ids=["consistent", "warm", "none"],
)
def test_a_migration_with_clients_writing_throughout_loses_no_acknowledged_write(
    setup: LocalSetup, start_writers: StartWriters, execution_input: dict[str, Any]
) -> None:
    # Given ElastiCache holds a few keys and every client function writes all along
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(SEED)
    writers = start_writers(setup)
    before = setup.snapshot()

    # When the migration runs
    run = setup.run(execution_input)
    after = setup.snapshot()
    verdict = writers.verdict(run)
    report = writers.writes.report(verdict)

    # Then it is migrated, the writers really moved from one Redis to the other, and nothing is lost
    # (or the run refused before any change)
    require(verdict.acknowledged > 0, "the writers wrote")
    if not refused_first(run):
        require(run.described["status"] == "SUCCEEDED", run.described.get("cause"))
        require(is_migrated(setup, before, after, run), before.differences(after))
        require(writes_on_both_sides(report["clients"]), "a writer followed its function to the new Redis")
    lost_nothing_or_refused(run, before, after, verdict)


def test_canary_waves_with_clients_writing_throughout_lose_no_acknowledged_write(
    setup: LocalSetup, start_writers: StartWriters
) -> None:
    # Given steady traffic for the bake, a few keys, and every client function writing
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(SEED)
    simulate_client_traffic(setup.engine, setup.account, history_minutes=2)
    writers = start_writers(setup)
    before = setup.snapshot()

    # When the migration goes in two waves, baking the first
    run = setup.run({"cutoverWaves": [1, "100%"], "bakeMinutes": 2, "dataCopy": "warm"})
    after = setup.snapshot()
    verdict = writers.verdict(run)

    # Then no acknowledged write is lost (or the run refused first)
    require(verdict.acknowledged > 0, "the writers wrote")
    lost_nothing_or_refused(run, before, after, verdict)


def test_a_copy_back_keeps_what_a_client_the_run_does_not_switch_wrote(
    setup: LocalSetup, start_writers: StartWriters
) -> None:
    # Given a function that fails once switched (the bake rolls back by itself) and a writer per function
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(SEED)
    failing = setup.account.client_functions[0]
    simulate_client_traffic(setup.engine, setup.account, history_minutes=2, failing=(failing,))
    writers = start_writers(setup)
    # And another client (a cron job on an instance) that writes to ElastiCache while the bake waits
    # (during the freeze it is quiet: the consistent verification would see it otherwise)
    other: list[Writers] = []

    def cron_job(wait: WaitRecord) -> None:
        if wait.state_name == "WaitForBake" and not other:
            other.append(start_writers(setup, rate=20.0, other_writer=True, function_writers=False))
            time.sleep(1.5)

    setup.engine.on_wait(cron_job)
    before = setup.snapshot()

    # When the consistent migration bakes, regresses, and copies the writes since the cutover back
    run = setup.run({"dataCopy": "consistent", "bakeMinutes": 2})
    after = setup.snapshot()
    verdict = writers.verdict(run)
    require(bool(other), "the bake waited")
    other_verdict = other[0].verdict(run)

    # Then the run rolled back through the copy back, and neither the functions' writes nor the
    # other client's are lost
    require(run.described["error"] == "BakeRegressed", run.described.get("cause"))
    require("CopyDataBack" in run.states_entered, run.states_entered)
    require(other_verdict.acknowledged > 0, "the other client wrote")
    lost_nothing_or_refused(run, before, after, verdict)
    assert other_verdict.lost == 0, other_verdict.lost_keys


def test_a_rollback_later_carries_the_writes_made_since_the_cutover(
    setup: LocalSetup, start_writers: StartWriters
) -> None:
    # Given a consistent migration with every function writing, and a soak on the self-hosted Redis
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(SEED)
    writers = start_writers(setup)
    migration = setup.run({"dataCopy": "consistent"})
    require(migration.described["status"] == "SUCCEEDED", migration.described.get("cause"))
    time.sleep(3)

    # When it is rolled back later, the writers still writing
    rollback = setup.run({"rollbackOf": migration.execution_arn})
    verdict = writers.verdict(migration, rollback)

    # Then every function is back on ElastiCache and no acknowledged write is lost
    require(rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause"))
    assert verdict.lost == 0, verdict.lost_keys


def test_the_check_finds_a_write_deleted_behind_the_writers_back(
    setup: LocalSetup, start_writers: StartWriters
) -> None:
    # Given a migration with writers that lost nothing
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(SEED)
    writers = start_writers(setup)
    run = setup.run({"dataCopy": "consistent"})
    writers.writes.stop()
    entries = [e for e in writers.writes.ledger.entries() if e.kind == "set" and e.acknowledged]
    assert entries

    # When one acknowledged key is deleted on the Redis its client points to at the end
    victim = entries[-1]
    password = setup.password()
    host, port = setup.sandbox.loopback_address(6379)
    client: Any = redis.Redis(host=host, port=port, password=password, db=victim.db)
    try:
        assert client.delete(victim.key) == 1
    finally:
        client.close()
    verdict = writers.verdict(run)

    # Then the check counts exactly that write as lost, and names it
    assert verdict.lost == 1
    assert len(verdict.lost_keys) == 1
    assert verdict.lost_keys[0].startswith(f"{victim.key} (db {victim.db}, {victim.client})")


# Where a failure meets writes in flight: in every mode, the steps between the first switched
# writer and the end of the data's journey (inside a Map, the second item: the first is switched).
FAILURES_WITH_WRITERS = [
    ("none", "CutOverFunction", 2),
    ("warm", "CutOverFunction", 2),
    ("warm", "CatchUpData", 1),
    ("warm", "VerifyCutover", 1),
    ("consistent", "CopyData", 1),
    ("consistent", "CutOverFunction", 2),
    ("consistent", "UnfreezeFunction", 2),
    ("consistent", "VerifyCutover", 1),
]


@pytest.mark.parametrize(
    ("mode", "state", "invocation"),
    FAILURES_WITH_WRITERS,
    ids=[f"{m}-{s}" for m, s, _ in FAILURES_WITH_WRITERS],
)
def test_a_failure_with_clients_writing_throughout_loses_no_acknowledged_write(
    setup: LocalSetup, start_writers: StartWriters, mode: str, state: str, invocation: int
) -> None:
    # Given ElastiCache holds a few keys, every client function writes all along, and a step fails
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(SEED)
    writers = start_writers(setup, rate=2.0)
    setup.engine.fail_at(state, invocation)

    # When the migration runs and rolls back
    run = setup.run({"dataCopy": mode})
    verdict = writers.verdict(run)

    # Then the failure really happened, the rollback finished or named what is left, and every
    # acknowledged write is where its client will read it (or named in what is left to do)
    require(state in run.states_entered, run.states_entered)
    require(run.described["status"] == "FAILED", run.described.get("cause"))
    require(verdict.acknowledged > 0, "the writers wrote")
    assert run.described.get("error") in {INJECTED_ERROR, "RollbackFailed"}, run.described.get("cause")
    if run.described.get("error") == "RollbackFailed":
        assert json.loads(run.described["cause"])["leftToDoByHand"], run.described["cause"]
    assert verdict.lost == 0, verdict.lost_keys
