"""`redis-migration decommission`, `history` of a decommission, and `rehearse --decommission`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from redis_migration_ops.cli import app
from redis_migration_ops.decommission_rehearsal import elasticache_state
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from tests.statemachine.decommission_support import Migrated, all_gone, migrated_account

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    with migrated_account(tmp_path_factory.mktemp("cli-decommission") / "rehearsal") as made:
        yield made


def test_decommission_refuses_an_execution_that_is_not_a_migration(migrated: Migrated) -> None:
    # Given a dry run of the stack (it succeeded, but migrated nothing)
    setup = migrated.setup
    dry = setup.run({"dryRun": True}, name="dry-run-for-cli")
    machine = setup.engine.stack.state_machine_arn()

    # When the operator asks to decommission after it
    result = CliRunner().invoke(
        app, ["decommission", dry.execution_arn.rsplit(":", 1)[-1], "--state-machine-arn", machine]
    )

    # Then nothing starts, and the refusal says why (exit 2)
    assert result.exit_code == 2, result.output
    assert "is not a migration (its outcome is 'planned')" in result.output


def test_decommission_waits_to_the_end_prints_the_way_back_and_history_reports_the_saving(
    migrated: Migrated,
) -> None:
    # Given the migration that succeeded, named as the operator would
    setup = migrated.setup
    machine = setup.engine.stack.state_machine_arn()
    name = migrated.migration.execution_arn.rsplit(":", 1)[-1]

    # When the operator decommissions after it (no gate, soak 0) and follows it
    result = CliRunner().invoke(
        app,
        [
            "decommission",
            name,
            "--soak-hours",
            "0",
            "--no-approval",
            "--wait",
            "--interval",
            "0.05",
            "--state-machine-arn",
            machine,
        ],
    )

    # Then it ends decommissioned (exit 0), printing the saving and the restore command
    assert result.exit_code == 0, result.output
    assert all_gone(elasticache_state(setup))
    assert "monthly saving: $23.36/month" in result.output
    assert "aws elasticache create-replication-group" in result.output
    assert "--snapshot-name campaign-redis-final-" in result.output
    started = result.output.splitlines()[0].strip()

    # and its audit report has the decommission: what went, the snapshot kept, the saving
    history = CliRunner().invoke(app, ["history", started, "--format", "markdown"])
    assert history.exit_code == 0, history.output
    assert "## Decommission" in history.output
    assert "Complete: yes" in history.output
    assert "Monthly saving: $23.36/month" in history.output
    report = json.loads(CliRunner().invoke(app, ["history", started, "--format", "json"]).output)
    assert report["decommission"]["monthlySavingUsd"] == pytest.approx(23.36)
    assert report["trigger"]["kind"] == "decommission"
