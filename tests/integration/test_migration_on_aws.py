"""On real AWS: plan, migrate a test instance's client functions, roll back; everything as before.

Prerequisites (docs/operating.md): the stack deployed with `sam deploy` for a *test* environment,
an SSM-managed test instance, and test functions on ElastiCache named in
REDIS_MIGRATION_TEST_FUNCTIONS (comma-separated). The tests drive the CLI exactly as an operator.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from redis_migration_ops.audit.report import AuditReport
from redis_migration_ops.cli import app

pytestmark = pytest.mark.integration


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--stack-name", os.environ["REDIS_MIGRATION_STACK_NAME"]])


def _environments(names: list[str]) -> dict[str, dict[str, str]]:
    lambda_ = boto3.client("lambda")
    return {
        name: lambda_.get_function_configuration(FunctionName=name)
        .get("Environment", {})
        .get("Variables", {})
        for name in names
    }


def _wait_for_state(execution_arn: str, state: str, timeout_s: float) -> None:
    client = boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = client.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return
        time.sleep(5)
    raise AssertionError(f"{state} not entered within {timeout_s} s")


@pytest.fixture(scope="module")
def functions() -> list[str]:
    return [name for name in os.environ.get("REDIS_MIGRATION_TEST_FUNCTIONS", "").split(",") if name]


def test_plan_changes_nothing(functions: list[str]) -> None:
    before = _environments(functions)
    args = [arg for name in functions for arg in ("--function", name)]
    result = _cli("plan", "--release", "integration", *args, "--interval", "2")
    assert result.exit_code == 0, result.stderr
    assert all(f"  {name}\n" in result.stdout for name in functions)
    assert _environments(functions) == before


def test_migrate_then_roll_back_restores_every_function(functions: list[str]) -> None:
    before = _environments(functions)
    args = [arg for name in functions for arg in ("--function", name)]
    started = _cli(
        "start", "--release", "integration", *args, "--wait", "--interval", "5", "--timeout", "1800"
    )
    assert started.exit_code == 0, started.stderr
    execution_arn = started.stdout.strip().splitlines()[0]
    migrated = _environments(functions)
    assert all(migrated[name]["REDIS_HOST"] != before[name].get("REDIS_HOST") for name in functions)

    report = AuditReport.from_json(_cli("history", execution_arn, "--format", "json").stdout)
    assert report.execution.status == "SUCCEEDED"
    assert sorted(f.function_name for f in report.functions) == sorted(functions)

    rolled_back = _cli("rollback", execution_arn, "--wait", "--interval", "5", "--timeout", "1800")
    assert rolled_back.exit_code == 0, rolled_back.stderr
    assert _environments(functions) == before


def test_reject_records_the_reason(functions: list[str]) -> None:
    args = [arg for name in functions for arg in ("--function", name)]
    started = _cli("start", "--release", "integration-reject", *args, "--require-approval")
    assert started.exit_code == 0, started.stderr
    execution_arn = started.stdout.strip().splitlines()[0]
    before = _environments(functions)
    _wait_for_state(execution_arn, "WaitForApproval", timeout_s=900)
    result = _cli("reject", execution_arn, "--reason", "integration test", "--wait", "--interval", "5")
    assert result.exit_code == 3, result.stderr
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution_arn)
    assert described["error"] == "ApprovalRejected"
    assert "integration test" in described["cause"]
    assert _environments(functions) == before
