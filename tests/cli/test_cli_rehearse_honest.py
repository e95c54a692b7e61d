"""`rehearse` says what happened: its exit code and outcome follow the account and the ledger, not the
workflow's word (issue 16). Each test is one whole rehearsal through the CLI, in-process.

In a module of its own: each rehearsal runs its own local engine, and one engine runs in a process at
a time (no module fixture of an engine here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.sandbox_host import SandboxHost

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)


def rehearse(
    tmp_path: Path, *args: str, inputs: tuple[dict[str, Any], ...] = ()
) -> tuple[Result, dict[str, Any]]:
    files: list[str] = []
    for number, document in enumerate(inputs, start=1):
        path = tmp_path / f"input-{number}.json"
        path.write_text(json.dumps(document))
        files += ["--input", str(path)]
    workdir = tmp_path / "rehearsal"
    result = CliRunner().invoke(
        app, ["rehearse", "--functions", "2", "--workdir", str(workdir), *files, *args]
    )
    report_path = workdir / "report.json"
    return result, json.loads(report_path.read_text()) if report_path.exists() else {}


def test_a_dry_run_is_labelled_a_dry_run(tmp_path: Path) -> None:
    result, report = rehearse(tmp_path, inputs=({"dryRun": True},))
    assert result.exit_code == 0, result.output
    assert report["outcome"] == "dry run: nothing was changed (the plan is in the output)"
    assert "SUCCEEDED: dry run" in result.output
    assert report["differences"] == []


def test_a_run_that_leaves_a_client_on_elasticache_is_not_migrated(tmp_path: Path) -> None:
    # Given an input that switches only one of the two client functions
    result, report = rehearse(tmp_path, inputs=({"functions": ["campaign-worker-001"], "dataCopy": "none"},))

    # Then the workflow ends SUCCEEDED, but the rehearsal does not call it migrated
    assert report["status"] == "SUCCEEDED"
    assert result.exit_code == 1, result.output
    assert report["outcome"].startswith(
        "NOT migrated: the workflow ended migrated, but 1 function(s) still use"
    )
    assert report["clientsOnElastiCache"] == ["campaign-worker-002"]
    assert "1 of 2 switched" in report["outcome"]


def test_a_host_not_inspected_after_the_migration_is_a_warning(tmp_path: Path) -> None:
    # Given InspectHostAfter fails (the workflow only notes it and succeeds)
    result, report = rehearse(tmp_path, "--fail-at", "InspectHostAfter")

    # Then the run is migrated, and the report and the CLI say the host was not inspected
    assert result.exit_code == 0, result.output
    assert report["status"] == "SUCCEEDED"
    (warning,) = report["warnings"]
    assert warning.startswith("InspectHostAfter failed (RehearsalInjectedFailure")
    assert "warning: InspectHostAfter failed" in result.output


def test_a_sequence_rolls_back_its_first_run_by_number(tmp_path: Path) -> None:
    # Given a migration, then {"rollbackOf": "@1"}
    result, report = rehearse(tmp_path, inputs=({}, {"rollbackOf": "@1"}))

    # Then run 2 rolled back run 1, named by its execution ARN, and every function is back
    assert result.exit_code == 0, result.output
    first, second = report["runs"]
    assert second["input"] == {"rollbackOf": first["executionArn"]}
    assert second["outcome"] == "rolled back: every function is back on ElastiCache"
    assert second["clientsOnSelfHosted"] == []


def test_a_rollback_of_a_run_that_comes_later_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result, report = rehearse(tmp_path, inputs=({"rollbackOf": "@2"}, {}))
    assert result.exit_code == 2
    assert "--input #1: rollbackOf '@2' names run 2; only an earlier run" in result.output
    assert report == {}


def test_rehearse_decommission_honours_the_seed_the_data_copy_and_every_input(tmp_path: Path) -> None:
    # Given a seeded ElastiCache, a warm copy and two runs (a migration and its re-run), then the
    # decommission
    # (no writers: warm mode's writes are another test's matter)
    result, report = rehearse(
        tmp_path,
        "--decommission",
        "--seed-keys",
        "30",
        "--data-copy",
        "warm",
        "--client-writes",
        "0",
        inputs=({}, {"release": "again"}),
    )

    # Then both runs ran, the first copied the seeded keys warm, and the decommission followed the last
    assert result.exit_code == 0, result.output
    first, second = report["runs"]
    assert first["data"]["mode"] == "warm"
    assert first["data"]["source"]["keysBefore"] == 30
    assert first["data"]["copied"] == 30
    assert second["input"]["release"] == "again"
    assert report["decommission"]["status"] == "SUCCEEDED"
    assert "then its decommission" in result.output
