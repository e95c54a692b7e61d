"""A migration that fails after the cutover: `watch` exits 3 and `history` renders the rollback path."""

from __future__ import annotations

import pytest

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.audit.report import AuditReport
from tests.cli.conftest import POLL_S, LocalStack


@pytest.fixture(scope="module")
def failed_run(local_stack: LocalStack) -> tuple[str, dict[str, object]]:
    """A migration whose VerifyCutover fails, so the workflow rolls every function back."""
    local_stack.engine.fail_at("VerifyCutover")
    before = local_stack.snapshot()
    started = local_stack.cli(
        *local_stack.with_machine("start", "--release", "v2.15.0", "--remove-key", OLD_AUTH_KEY)
    )
    assert started.exit_code == 0, started.stderr
    return started.stdout.strip(), before


def test_watch_follows_the_rollback_and_exits_3(
    local_stack: LocalStack, failed_run: tuple[str, dict[str, object]]
) -> None:
    # Given a migration that fails at VerifyCutover
    execution_arn, before = failed_run
    # When it is watched by name
    name = execution_arn.rsplit(":", 1)[-1]
    result = local_stack.cli(*local_stack.with_machine("watch", name, "--interval", POLL_S))
    # Then the failure and the rollback are shown as they happen; exit 3: failed, everything put back
    assert result.exit_code == 3, result.stderr
    lines = result.stderr
    assert "✗ VerifyCutover: RehearsalInjectedFailure" in lines
    assert (
        lines.index("→ VerifyCutover")
        < lines.index("→ RestoreFunctions")
        < lines.index("→ MigrationRolledBack")
    )
    assert "FAILED (exit 3)" in lines
    assert local_stack.snapshot() == before
    assert local_stack.password() not in result.stdout + result.stderr


def test_history_markdown_renders_the_rollback_path(
    local_stack: LocalStack, failed_run: tuple[str, dict[str, object]]
) -> None:
    # Given the failed, rolled-back migration
    execution_arn, _ = failed_run
    local_stack.engine.wait_for_execution(execution_arn, timeout_s=120)
    # When its history is rendered as Markdown
    result = local_stack.cli("history", execution_arn, "--format", "markdown")
    # Then the report names the error, each restore and the path taken
    assert result.exit_code == 0, result.stderr
    markdown = result.stdout
    assert "## Rollback" in markdown
    assert "Reason: `RehearsalInjectedFailure`" in markdown
    assert (
        "Path: IsRestoreNeeded → RestoreFunctions → VerifyFunctionsRestored → IsHostServicesRestoreNeeded"
        " → IsCopiedDataToClear → ClearCopiedData → IsIngressStillNeeded → RevokeRedisIngress"
        " → IsHostRevertNeeded"
        " → RevertRedisHost → IsWriterThawNeeded → ListRollbackLeftovers → DidRollbackComplete"
        " → NotifyMigrationRolledBack → MigrationRolledBack"
    ) in markdown
    assert "Complete: yes" in markdown
    rows = markdown.splitlines()
    for function in local_stack.account.client_functions:
        # The Functions table: values before and after, what the cutover and the restore did.
        row = next(line for line in rows if line.startswith(f"| {function} |"))
        assert "| changed |" in row
        assert row.endswith(
            "| restored: put back: REDIS_HOST, REDIS_PASSWORD_SECRET_ARN, REDIS_AUTH_TOKEN_SECRET_ARN |"
        )
    assert local_stack.password() not in markdown
    # And the JSON form agrees
    report = AuditReport.from_json(local_stack.cli("history", execution_arn, "--format", "json").stdout)
    assert report.execution.exit_code == 3
    assert report.rollback is not None
    assert not report.rollback.requested
    assert {state.name: state.result for state in report.states}["VerifyCutover"] == "caught"
    # The host before the run and after its revert, with nothing left different
    assert "## Host" in markdown
    assert report.host is not None
    assert report.host.before is not None
    assert report.host.after is not None
    assert report.host.differences == []
    assert report.host.before["config"]["sha256"] == report.host.after["config"]["sha256"]


def test_rollback_refuses_a_failed_run(
    local_stack: LocalStack, failed_run: tuple[str, dict[str, object]]
) -> None:
    # Given the failed run (it already rolled itself back)
    execution_arn, _ = failed_run
    local_stack.engine.wait_for_execution(execution_arn, timeout_s=120)
    # When a later rollback of it is asked for
    result = local_stack.cli("rollback", execution_arn)
    # Then it is refused in one line, exit 2
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is FAILED, not SUCCEEDED" in result.stderr
