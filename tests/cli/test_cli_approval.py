"""The approval gate: `approve` lets the cutover go on, `reject` rolls back before anything is switched."""

from __future__ import annotations

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.audit.report import AuditReport
from tests.cli.conftest import POLL_S, LocalStack


def _start_gated(local_stack: LocalStack, release: str) -> str:
    started = local_stack.cli(
        *local_stack.with_machine(
            "start", "--release", release, "--remove-key", OLD_AUTH_KEY, "--require-approval"
        )
    )
    assert started.exit_code == 0, started.stderr
    execution_arn = started.stdout.strip()
    local_stack.wait_for_state(execution_arn, "WaitForApproval")
    return execution_arn


def test_reject_rolls_back_before_any_function_is_switched(local_stack: LocalStack) -> None:
    # Given a migration waiting at the approval gate
    before = local_stack.snapshot()
    execution_arn = _start_gated(local_stack, "v3.0.0-rejected")
    # When the operator rejects it, by name
    name = execution_arn.rsplit(":", 1)[-1]
    result = local_stack.cli(
        *local_stack.with_machine(
            "reject", name, "--reason", "error rate on canary", "--wait", "--interval", POLL_S
        )
    )
    # Then the run fails with ApprovalRejected (exit 3) and every function and rule is as before
    assert result.exit_code == 3, result.stderr
    described = local_stack.engine.wait_for_execution(execution_arn, timeout_s=60)
    assert described["status"] == "FAILED"
    assert described["error"] == "ApprovalRejected"
    # (moto 5.2.5's SendTaskFailure drops the cause, so the reason is checked on real AWS only:
    # tests/integration.)
    assert local_stack.snapshot() == before
    # And the audit report records who rejected and that no cutover ran
    report = AuditReport.from_json(local_stack.cli("history", execution_arn, "--format", "json").stdout)
    assert report.approval is not None
    assert report.approval.decision == "rejected"
    assert all(state.name != "CutOverFunctions" for state in report.states)
    assert report.rollback is not None
    assert report.rollback.reason_error == "ApprovalRejected"


def test_approve_lets_the_cutover_go_on(local_stack: LocalStack) -> None:
    # Given a migration waiting at the approval gate: nothing switched yet
    before = local_stack.snapshot()
    execution_arn = _start_gated(local_stack, "v3.0.0")
    assert local_stack.snapshot()["functions"] == before["functions"]
    # When the operator approves it
    result = local_stack.cli(
        "approve", execution_arn, "--comment", "canary green", "--wait", "--interval", POLL_S
    )
    # Then the migration succeeds and every client function is switched
    assert result.exit_code == 0, result.stderr
    assert "→ MigrationSucceeded" in result.stderr
    after = local_stack.snapshot()["functions"]
    for function in local_stack.account.client_functions:
        assert after[function]["REDIS_HOST"] == local_stack.account.private_ip
    report = AuditReport.from_json(local_stack.cli("history", execution_arn, "--format", "json").stdout)
    assert report.approval is not None
    assert report.approval.decision == "approved"
    assert report.approval.comment == "canary green"
    assert local_stack.password() not in result.stdout + result.stderr


def test_approve_refuses_an_execution_that_is_not_waiting(local_stack: LocalStack) -> None:
    # Given a finished execution (a dry run)
    planned = local_stack.cli(*local_stack.with_machine("plan", "--release", "v3-plan", "--interval", POLL_S))
    assert planned.exit_code == 0, planned.stderr
    name = planned.stderr.split("dry run ", 1)[1].split(" ", 1)[0]
    # When someone tries to approve it
    result = local_stack.cli(*local_stack.with_machine("approve", name))
    # Then one clear line, exit 2
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nothing to approve or reject" in result.stderr
