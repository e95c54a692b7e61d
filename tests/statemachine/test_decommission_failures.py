"""A failure injected at every Task state of the decommission, in turn (the states read from the ASL).

Each run must end unchanged (nothing deleted, this run's snapshot discarded), completed, or
DecommissionIncomplete naming exactly what is left; a re-run then completes it. Never half.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from redis_migration_ops.local_engine import INJECTED_ERROR
from redis_migration_ops.rehearsal.decommission import ElastiCacheState, elasticache_state, run_decommission
from tests.conftest import ASL_PATH
from tests.statemachine.decommission_support import (
    Migrated,
    all_gone,
    decommission_task_states,
    left_of,
    migrated_account,
    rebuild_elasticache,
)

ASL: dict[str, Any] = json.loads(ASL_PATH.read_text())


TASKS = decommission_task_states(ASL)


@dataclass(frozen=True)
class Scenario:
    also_fail: tuple[str, ...] = ()


# A plain decommission enters every other Task state; a new one without a way in fails its test.
REACHED_BY = {
    "DiscardFinalSnapshot": Scenario(also_fail=("ExportFinalSnapshot",)),
    "NotifyDecommissionFailed": Scenario(also_fail=("CreateFinalSnapshot",)),
    "NotifyDecommissionIncomplete": Scenario(also_fail=("DeleteCacheSubnetGroup",)),
}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    with migrated_account(tmp_path_factory.mktemp("decommission-failures") / "rehearsal") as made:
        yield made


@pytest.fixture(autouse=True)
def fresh_elasticache(migrated: Migrated) -> Iterator[None]:
    yield
    migrated.setup.engine.clear_failures()
    rebuild_elasticache(migrated)


def still_there(state: ElastiCacheState, migrated: Migrated) -> list[str]:
    """The identifiers of what a decommission deletes that still exist (what DecommissionIncomplete names)."""
    account = migrated.setup.account
    found = []
    cache_group = account.security_groups["campaign-system-elasticache"]
    clients = migrated.setup.engine.client("ec2").describe_security_groups(GroupIds=[account.client_group_id])
    for permission in clients["SecurityGroups"][0].get("IpPermissionsEgress", []):
        if any(pair.get("GroupId") == cache_group for pair in permission.get("UserIdGroupPairs", [])):
            found.append(f"egress tcp 6379 to {cache_group}")
    if state.replication_group is not None:
        found.append("replication group campaign-redis")
    if state.subnet_group:
        found.append("cache subnet group campaign-system-cache")
    if state.parameter_group:
        found.append("cache parameter group campaign-redis-params")
    for name, exists in state.security_groups.items():
        if exists:
            found.append(f"security group {account.security_groups[name]}")
    if state.secret_scheduled_for_deletion is False:
        found.append(f"secret {account.old_auth_secret_arn}")
    return found


def test_every_decommission_task_state_is_covered() -> None:
    assert len(TASKS) >= 15, TASKS
    assert {"CreateFinalSnapshot", "DeleteReplicationGroup", "DiscardFinalSnapshot"} <= set(TASKS)


@pytest.mark.parametrize("state", TASKS)
def test_a_failure_at_each_task_state_leaves_elasticache_whole_deleted_or_named(
    migrated: Migrated, state: str
) -> None:
    setup = migrated.setup
    scenario = REACHED_BY.get(state, Scenario())
    for other in scenario.also_fail:
        setup.engine.fail_at(other, 1)
    # Given the state fails the first time it runs
    setup.engine.fail_at(state, 1)
    before = elasticache_state(setup)

    # When the decommission runs
    run = run_decommission(setup, migrated.migration.execution_arn, name=f"fail-at-{state}")
    after = elasticache_state(setup)

    # Then the state was reached, and the run ended in one of the three ends the design allows
    assert state in run.states_entered, f"{state} was never entered: give it a Scenario in REACHED_BY"
    described = run.described
    if described["status"] == "SUCCEEDED":
        assert all_gone(after), after
        return
    if described.get("error") != "DecommissionIncomplete":
        assert after == before, (described.get("error"), described.get("cause"))
        assert described.get("error") in {INJECTED_ERROR, "DecommissionRefused"}
        assert INJECTED_ERROR in str(described.get("cause")) or described.get("error") == INJECTED_ERROR
        return
    # DecommissionIncomplete: what it names is exactly what is left
    left = left_of(run)
    made_here = [name for name in after.snapshots if name not in before.snapshots]
    intact = after.replication_group not in (None, "deleting")
    # Nothing deleted (the compensation failed): only this run's snapshot is left; else what still exists.
    expected = made_here if intact else still_there(after, migrated)
    for name in expected:
        assert any(name in line for line in left), (name, left)
    for line in left:
        assert any(name in line for name in [*expected, *made_here]), (line, expected)

    # and a re-run finishes the job
    setup.engine.clear_failures()
    again = run_decommission(setup, migrated.migration.execution_arn, name=f"rerun-{state}")
    assert again.described["status"] == "SUCCEEDED", again.described.get("cause")
    assert all_gone(elasticache_state(setup))
