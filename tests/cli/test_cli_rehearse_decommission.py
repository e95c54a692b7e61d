"""`redis-migration rehearse --decommission`: a migration, then its decommission, in a fresh engine.

In a module of its own: one local engine runs in a process at a time (the engine of
test_cli_decommission.py's module fixture must have stopped).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.sandbox_host import SandboxHost

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)


def test_rehearse_decommission_ends_with_elasticache_gone_the_snapshot_kept_and_the_saving(
    tmp_path: Path,
) -> None:
    # When the whole rehearsal runs: a migration, then its decommission
    workdir = tmp_path / "rehearsal"
    result = CliRunner().invoke(
        app, ["rehearse", "--decommission", "--functions", "2", "--workdir", str(workdir)]
    )

    # Then it ends decommissioned (exit 0) and the report shows every resource gone but the snapshot
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "report.json").read_text())
    assert report["status"] == "SUCCEEDED"
    decommission = report["decommission"]
    assert decommission["status"] == "SUCCEEDED"
    after = decommission["elastiCache"]["after"]
    assert after["replication_group"] is None
    assert after["subnet_group"] is False
    assert not any(after["security_groups"].values())
    assert after["secret_scheduled_for_deletion"] is True
    assert list(after["snapshots"].values()) == ["available"]
    assert after["exported_files"]
    assert decommission["monthlySavingUsd"] == pytest.approx(23.36)
    assert "monthly saving: $23.36/month" in result.output
