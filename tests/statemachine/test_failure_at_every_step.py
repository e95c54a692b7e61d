"""A failure injected at every Task state of the real ASL, in turn.

The Task states come from the ASL file itself. Each run must end in one of the outcomes the
design allows: fully migrated, exactly as before (with the original error), or RollbackFailed
with every difference from before named in the notification's to-do list. Never half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from redis_migration_ops.asl_checks import task_state_names
from redis_migration_ops.local_engine import INJECTED_ERROR
from redis_migration_ops.rehearsal.migration import LocalSetup, RunResult, WorldSnapshot
from tests.conftest import ASL_PATH
from tests.statemachine.conftest import StartWriters, add_queue_feed, differences, is_migrated, leftovers
from tests.statemachine.decommission_support import decommission_task_states
from tests.statemachine.test_host_services_steps import add_worker

ASL: dict[str, Any] = json.loads(ASL_PATH.read_text())


def all_states(scope: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, state in scope["States"].items():
        found[name] = state
        if "ItemProcessor" in state:
            found.update(all_states(state["ItemProcessor"]))
    return found


STATES = all_states(ASL)
INSIDE_A_MAP = {
    name
    for state in ASL["States"].values()
    if "ItemProcessor" in state
    for name in state["ItemProcessor"]["States"]
}


def is_best_effort(name: str) -> bool:
    """A Task whose every Catch continues where success would: its failure must not change the outcome."""
    state = STATES[name]
    catchers = state.get("Catch", [])
    return bool(catchers) and all(catcher["Next"] == state.get("Next") for catcher in catchers)


@dataclass(frozen=True)
class Scenario:
    """How a run reaches a Task state that a plain migration does not enter."""

    execution_input: dict[str, Any] = field(default_factory=dict)
    rollback_later: bool = False
    also_fail: tuple[str, ...] = ()
    rollback_fails: bool = False
    # Keys ElastiCache holds before the run (the data steps copy them).
    seed_keys: int = 0
    # A systemd unit on the instance that uses Redis (for hostServices).
    worker: bool = False

    @property
    def freezes(self) -> bool:
        """A consistent copy freezes the writers (and disables their event source mappings)."""
        return self.execution_input.get("dataCopy") == "consistent"


# The consistent data copy: writers frozen, keys copied, verified, unfrozen.
CONSISTENT = {"dataCopy": "consistent"}
# A bake of two minutes after the cutover (the local engine's Waits take no time).
BAKE = {"bakeMinutes": 2}
# The guide's worker on the instance, switched with the functions.
WORKER = "campaign-worker"
SERVICES = {"hostServices": [WORKER], **BAKE}


# The writers' rate: a few writes a second each, so every run has writes on both sides of its steps.
WRITES_PER_SECOND = 2.0

# A plain migration enters every other Task state. If a new state is added without a way in,
# its test fails (the state is never entered), so it cannot pass unnoticed.
REACHED_BY = {
    "WaitForApproval": Scenario(execution_input={"requireApproval": True}),
    "PrepareRollback": Scenario(rollback_later=True),
    "NotifyRollbackCompleted": Scenario(rollback_later=True),
    "RestoreFunction": Scenario(also_fail=("VerifyCutover",), rollback_fails=True),
    "VerifyFunctionsRestored": Scenario(also_fail=("VerifyCutover",), rollback_fails=True),
    "RevertRedisHost": Scenario(also_fail=("VerifyCutover",), rollback_fails=True),
    "RevokeRedisIngress": Scenario(also_fail=("VerifyCutover",), rollback_fails=True),
    "NotifyMigrationRolledBack": Scenario(also_fail=("VerifyCutover",)),
    "NotifyRollbackFailed": Scenario(also_fail=("VerifyCutover", "RevokeRedisIngress"), rollback_fails=True),
    "CopyData": Scenario(execution_input=CONSISTENT, seed_keys=300),
    "FreezeFunction": Scenario(execution_input=CONSISTENT, seed_keys=300),
    "VerifyData": Scenario(execution_input=CONSISTENT, seed_keys=300),
    "UnfreezeFunction": Scenario(execution_input=CONSISTENT, seed_keys=300),
    "RecordDataBaseline": Scenario(execution_input=CONSISTENT, seed_keys=300),
    "VerifyWriterConcurrency": Scenario(
        execution_input=CONSISTENT, seed_keys=300, also_fail=("VerifyCutover",), rollback_fails=True
    ),
    "ClearCopiedData": Scenario(
        execution_input=CONSISTENT, seed_keys=300, also_fail=("VerifyCutover",), rollback_fails=True
    ),
    "RestoreFunctionConcurrency": Scenario(
        execution_input=CONSISTENT, seed_keys=300, also_fail=("VerifyCutover",), rollback_fails=True
    ),
    "RecordBaseline": Scenario(execution_input=BAKE),
    "ReadSelfHostedHealth": Scenario(execution_input=BAKE),
    "ReadHostHealth": Scenario(execution_input=BAKE),
    "CheckBake": Scenario(execution_input=BAKE),
    "CutOverHostServices": Scenario(execution_input=SERVICES, worker=True),
    # Consistent mode stops the worker with the freeze; the rollback starts it again as it was.
    "StopHostServices": Scenario(
        execution_input={**CONSISTENT, "hostServices": [WORKER]}, seed_keys=300, worker=True
    ),
    "RestoreHostServices": Scenario(
        execution_input=SERVICES, worker=True, also_fail=("CheckBake",), rollback_fails=True
    ),
    # The bake regresses after a consistent copy: the writers are frozen again and what they
    # wrote since the cutover is copied back to ElastiCache before the functions go back.
    "RefreezeFunction": Scenario(
        execution_input={**CONSISTENT, **BAKE}, seed_keys=300, also_fail=("CheckBake",), rollback_fails=True
    ),
    "StopHostServicesBack": Scenario(
        execution_input={**CONSISTENT, **SERVICES},
        seed_keys=300,
        worker=True,
        also_fail=("CheckBake",),
        rollback_fails=True,
    ),
    # Consistent mode needs every writer known: a client list that cannot be read or compared
    # refuses before any change (warm and none modes note it and go on).
    "ListElastiCacheClientsBefore": Scenario(execution_input=CONSISTENT, seed_keys=300),
    "CheckElastiCacheClientsBefore": Scenario(execution_input=CONSISTENT, seed_keys=300),
    # Warm mode: once every writer is switched, what they wrote on ElastiCache after the copy passed
    # their keys is carried across (a failure here rolls back with the writes copied back).
    "CatchUpData": Scenario(execution_input={"dataCopy": "warm"}, seed_keys=300),
    "CopyDataBack": Scenario(
        execution_input={**CONSISTENT, **BAKE}, seed_keys=300, also_fail=("CheckBake",), rollback_fails=True
    ),
}


def outcome(setup: LocalSetup, run: RunResult, before: WorldSnapshot, after: WorldSnapshot) -> str:
    described = run.described
    if described["status"] == "SUCCEEDED":
        return (
            "migrated"
            if run.output.get("outcome") == "migrated" and is_migrated(setup, before, after, run)
            else "half"
        )
    if described.get("error") == "RollbackFailed":
        return "rollbackFailed"
    if described["status"] == "FAILED" and before == after and described.get("error") == INJECTED_ERROR:
        return "asBefore"
    return "half"


# The decommission's own states have their own test (test_decommission_failures.py).
MIGRATION_TASKS = [name for name in task_state_names(ASL) if name not in decommission_task_states(ASL)]


@pytest.mark.parametrize("state", MIGRATION_TASKS)
def test_a_failure_at_each_task_state_leaves_everything_migrated_or_as_before(
    setup: LocalSetup, start_writers: StartWriters, state: str
) -> None:
    scenario = REACHED_BY.get(state, Scenario())
    if scenario.seed_keys:
        assert setup.elasticache is not None
        setup.elasticache.seed_keys(scenario.seed_keys)
    if scenario.worker:
        add_worker(setup, WORKER)
    if scenario.freezes:
        # A writer fed by a queue: its mapping is disabled for the freeze and must be enabled after.
        add_queue_feed(setup, setup.account.client_functions[1])
    # Every client function writes all along (the write ledger): whatever the outcome, no write it
    # had acknowledged may be lost. Their keys are left out of the snapshots' data comparison.
    writers = start_writers(setup, rate=WRITES_PER_SECOND)
    migrated_earlier = setup.run(name="earlier-migration") if scenario.rollback_later else None
    if migrated_earlier is not None:
        assert migrated_earlier.described["status"] == "SUCCEEDED"
    for other in scenario.also_fail:
        setup.engine.fail_at(other, 1)
    # Given the state fails (inside a Map: the second item, so the first is already done)
    setup.engine.fail_at(state, 2 if state in INSIDE_A_MAP else 1)
    before = setup.snapshot()

    # When the workflow runs
    execution_input = dict(scenario.execution_input)
    if migrated_earlier is not None:
        execution_input = {"rollbackOf": migrated_earlier.execution_arn}
    run = setup.run(execution_input, name=f"fail-at-{state}")
    after = setup.snapshot()

    # Then the state was really reached and the outcome is one the design allows
    assert state in run.states_entered, f"{state} was never entered: give it a Scenario in REACHED_BY"
    injected = [
        e
        for e in run.history
        if e["type"] == "TaskFailed" and e["taskFailedEventDetails"]["error"] == INJECTED_ERROR
    ]
    assert any(state in e["taskFailedEventDetails"]["cause"] for e in injected)

    verdict = writers.verdict(*(r for r in (migrated_earlier, run) if r is not None))
    assert verdict.acknowledged > 0, "the writers wrote"
    assert verdict.lost == 0, verdict.lost_keys

    if migrated_earlier is not None:
        assert_rollback_later_outcome(setup, state, run, before, after)
        return
    result = outcome(setup, run, before, after)
    if scenario.rollback_fails or (result == "rollbackFailed" and keeps_writes(run)):
        # Also: the clients wrote to the self-hosted Redis before the failure and not all of it is
        # on ElastiCache; it is kept, not emptied, and named (docs/data-copy.md, "Every write").
        assert result == "rollbackFailed", differences(before, after)
        named = " ".join(leftovers(run))
        where = {
            "(ingress)": setup.account.redis_group_id,
            "(host)": setup.account.instance_id,
            "(elasticache)": "ElastiCache",
            "(services)": setup.account.instance_id,
        }
        for name in differences(before, after):
            assert where.get(name, name) in named
    elif is_best_effort(state) and not scenario.also_fail:
        assert result == "migrated", (run.described.get("error"), differences(before, after))
    else:
        assert result == "asBefore", (
            run.described.get("error"),
            run.described.get("cause"),
            differences(before, after),
        )


def keeps_writes(run: RunResult) -> bool:
    """The rollback kept the self-hosted Redis because clients' writes are only there (named)."""
    return any("because it holds the writes this list names" in item for item in leftovers(run))


def assert_rollback_later_outcome(
    setup: LocalSetup, state: str, run: RunResult, before: WorldSnapshot, after: WorldSnapshot
) -> None:
    """A later rollback either leaves the migration as it was or undoes it completely."""
    if is_best_effort(state):
        assert run.described["status"] == "SUCCEEDED"
        for name in setup.account.client_functions:
            assert "REDIS_PASSWORD_SECRET_ARN" not in after.environments[name]
            assert after.environments[name]["REDIS_HOST"] != setup.account.private_ip
        assert after.ingress == {}
    else:
        assert run.described["status"] == "FAILED"
        assert run.described["error"] == INJECTED_ERROR
        assert after == before, differences(before, after)
