"""Help everywhere, and the operator's mistakes: one clear line on stderr, the documented exit code.

No engine here: a missing region or missing credentials must be caught before any call leaves
the process, so these tests need no AWS, not even moto.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from redis_migration_ops.cli import app

SUBCOMMANDS = ["plan", "start", "watch", "approve", "reject", "history", "rollback", "rehearse"]
EXECUTION_ARN = "arn:aws:states:eu-west-1:123456789012:execution:campaign-system-redis-migration-prod:run-1"


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No region, no credentials, no profile files, and no instance metadata lookups (no network)."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "REDIS_MIGRATION_STATE_MACHINE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    # Given the CLI
    # When --help is asked of a subcommand
    result = CliRunner().invoke(app, [command, "--help"])
    # Then it describes itself and exits 0
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    assert command in result.stdout


def test_top_level_help_lists_the_subcommands_and_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in SUBCOMMANDS:
        assert command in result.stdout
    assert "Exit codes:" in result.stdout


def test_a_missing_region_is_one_clear_line_exit_2(no_aws: None) -> None:
    # Given no region anywhere, and a state machine named only by its stack
    # When the operator starts a plan
    result = CliRunner().invoke(app, ["plan", "--stack-name", "redis-migration-prod"])
    # Then one line says what to do, exit 2, no traceback
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)"
    ]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_credentials_are_one_clear_line_exit_1(no_aws: None) -> None:
    # Given a region (from the execution ARN) but no credentials at all
    # When the operator watches an execution
    result = CliRunner().invoke(app, ["watch", EXECUTION_ARN])
    # Then one line, exit 1 (the environment, not the command, is wrong)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no AWS credentials found")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["watch", "arn:aws:states:eu-west-1:123:execution:x"], "not an execution ARN"),
        (["history", "not a name!"], "not an execution name or ARN"),
        (["approve", "run-1"], "is a name: pass its full ARN"),
        (
            [
                "start",
                "--state-machine-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:x",
                "--region",
                "eu-west-1",
            ],
            "not a state machine ARN",
        ),
    ],
)
def test_malformed_arguments_are_refused_before_any_call(
    no_aws: None, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]


def test_a_bake_regression_on_a_function_that_is_no_client_is_refused_before_the_rehearsal(
    tmp_path: Path,
) -> None:
    # Given the sample account's clients (campaign-worker-001 ...), and a name that is not one
    result = CliRunner().invoke(
        app,
        ["rehearse", "--bake-minutes", "5", "--bake-regression", "billing", "--workdir", str(tmp_path / "w")],
    )

    # Then the rehearsal refuses at once, naming it, with exit 2
    assert result.exit_code == 2
    assert "--bake-regression billing: not a client function of the account" in result.output
    assert not (tmp_path / "w").exists()
