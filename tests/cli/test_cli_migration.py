"""`start --wait`, `history` and `rollback` of a whole migration on a rehearsal account."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.audit.report import AuditReport
from tests.cli.conftest import POLL_S, LocalStack


@dataclass
class Migrated:
    before: dict[str, Any]
    after: dict[str, Any]
    execution_arn: str
    stdout: str
    stderr: str
    exit_code: int


@pytest.fixture(scope="module")
def migrated(local_stack: LocalStack) -> Migrated:
    """One migration started with `start --wait` (shared by the tests of this module)."""
    before = local_stack.snapshot()
    started = local_stack.cli(
        *local_stack.with_machine(
            "start", "--release", "v2.14.0", "--remove-key", OLD_AUTH_KEY, "--wait", "--interval", POLL_S
        )
    )
    return Migrated(
        before=before,
        after=local_stack.snapshot(),
        execution_arn=started.stdout.strip().splitlines()[0],
        stdout=started.stdout,
        stderr=started.stderr,
        exit_code=started.exit_code,
    )


def test_start_wait_migrates_every_client_function(local_stack: LocalStack, migrated: Migrated) -> None:
    # Given a rehearsal account whose clients use ElastiCache
    # When `start --wait` ran (fixture)
    # Then it exited 0 after following every state, and every client is on the new Redis
    assert migrated.exit_code == 0, migrated.stderr
    assert "→ CutOverFunction" in migrated.stderr
    assert "SUCCEEDED (exit 0)" in migrated.stderr
    name = migrated.execution_arn.rsplit(":", 1)[-1]
    assert name.startswith("rehearsal-v2-14-0-")
    assert len(name) <= 80
    for function in local_stack.account.client_functions:
        variables = migrated.after["functions"][function]
        assert variables["REDIS_HOST"] == local_stack.account.private_ip
        assert variables["REDIS_PASSWORD_SECRET_ARN"].split(":secret:")[1].startswith(local_stack.secret_name)
        assert OLD_AUTH_KEY not in variables
    for function in local_stack.account.other_functions:
        assert migrated.after["functions"][function] == migrated.before["functions"][function]
    assert local_stack.password() not in migrated.stdout + migrated.stderr


def test_history_json_round_trips_and_records_the_changes(
    local_stack: LocalStack, migrated: Migrated
) -> None:
    # Given the succeeded migration
    # When its history is printed as JSON
    result = local_stack.cli("history", migrated.execution_arn, "--format", "json")
    # Then it loads back into the same report, which names every change old → new
    assert result.exit_code == 0, result.stderr
    report = AuditReport.from_json(result.stdout)
    assert AuditReport.from_json(report.to_json()) == report
    assert json.loads(result.stdout) == json.loads(report.to_json())
    assert report.execution.status == "SUCCEEDED"
    assert report.execution.exit_code == 0
    assert report.trigger.kind == "cli"
    assert report.trigger.release == "v2.14.0"
    assert report.rollback is None
    assert report.errors == []
    changed = {f.function_name: {c.key: (c.before, c.after) for c in f.changes} for f in report.functions}
    assert sorted(changed) == local_stack.account.client_functions
    for function, values in changed.items():
        before = migrated.before["functions"][function]
        after = migrated.after["functions"][function]
        assert values["REDIS_HOST"] == (before["REDIS_HOST"], after["REDIS_HOST"])
        assert values[OLD_AUTH_KEY] == (before[OLD_AUTH_KEY], None)
    top = [state.name for state in report.states if state.depth == 0]
    assert top[:4] == ["IsRollbackRequested", "ValidateInput", "InspectHostBefore", "CheckPreconditions"]
    assert top[-1] == "MigrationSucceeded"
    assert all(state.result == "succeeded" for state in report.states)
    for output_format in ("json", "markdown", "table"):
        shown = local_stack.cli("history", migrated.execution_arn, "--format", output_format)
        assert shown.exit_code == 0
        assert local_stack.password() not in shown.stdout + shown.stderr


def test_rollback_of_a_succeeded_run_restores_every_function_exactly(
    local_stack: LocalStack, migrated: Migrated
) -> None:
    # Given the succeeded migration (days later, in the guide)
    # When it is rolled back from its recorded output
    result = local_stack.cli("rollback", migrated.execution_arn, "--wait", "--interval", POLL_S)
    # Then every function and the ingress are exactly as before the migration
    assert result.exit_code == 0, result.stderr
    assert "→ RestoreFunction" in result.stderr
    assert "rolled back" in result.stderr
    assert local_stack.snapshot() == migrated.before
    rollback_arn = result.stdout.strip().splitlines()[0]
    assert rollback_arn.rsplit(":", 1)[-1] == "rollback-" + migrated.execution_arn.rsplit(":", 1)[-1]
    # And its audit report shows the requested rollback path
    report = AuditReport.from_json(local_stack.cli("history", rollback_arn, "--format", "json").stdout)
    assert report.trigger.kind == "rollback"
    assert report.rollback is not None
    assert report.rollback.requested
    assert report.rollback.complete
    assert report.rollback.path[0] == "PrepareRollback"
    assert report.rollback.path[-1] == "RollbackCompleted"
