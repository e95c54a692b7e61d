"""`rehearse` with sequences of runs: the host is part of "as before" (issue 8's done-when).

Each test runs the real CLI in-process: one local account per rehearsal, the real workflow, the
real install and revert scripts in a sandbox host, a real redis-server. The outcome is judged by
the rehearsal from the host itself (config digest, listening ports, service, keys and digest),
never from what the workflow says.
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


def rehearse(tmp_path: Path, *args: str, inputs: list[dict[str, Any]] = ()) -> tuple[Result, dict[str, Any]]:  # type: ignore[assignment]
    files = []
    for number, document in enumerate(inputs, start=1):
        path = tmp_path / f"input-{number}.json"
        path.write_text(json.dumps(document))
        files += ["--input", str(path)]
    workdir = tmp_path / "rehearsal"
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = CliRunner().invoke(
        app, ["rehearse", "--functions", "2", "--workdir", str(workdir), *files, *args]
    )
    report_path = workdir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return result, report


def host_fact(run: dict[str, Any], *path: str) -> Any:
    value: Any = run["hostAfter"]
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize("change", [{"redisPort": 6380}, {"maxmemory": "256mb"}], ids=["port", "maxmemory"])
def test_a_failed_re_run_that_changed_the_host_leaves_it_exactly_as_after_run_one(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    # Given run 1 migrates and clients then write 500 keys; run 2 changes the port or maxmemory
    # and fails at its very last check
    result, report = rehearse(
        tmp_path, "--write-keys", "500", "--fail-at", "VerifyCutover@2", inputs=[{}, change]
    )

    # Then the rehearsal ends exit 3 ("as before") and the host is as run 1 left it
    assert result.exit_code == 3, (result.stderr, report.get("differences"))
    first, second = report["runs"]
    assert first["exitCode"] == 0
    assert first["dbsizeAfterWrites"] == 500
    assert second["exitCode"] == 3
    assert second["differences"] == []
    assert host_fact(second, "config", "sha256") == host_fact(first, "config", "sha256")
    assert host_fact(second, "service", "listenPorts") == [6379]
    assert host_fact(second, "redis", "dbsize") == 500
    assert host_fact(second, "redis", "digest") == second["hostBefore"]["redis"]["digest"]


def test_an_existing_redis_is_taken_over_with_every_key(tmp_path: Path) -> None:
    # Given a host already running Debian's Redis with 300 keys in its RDB (appendonly no)
    result, report = rehearse(tmp_path, "--existing-redis", "300")

    # Then the migration ends migrated and the 300 keys are all still there, unchanged
    assert result.exit_code == 0, result.stderr
    before, after = report["hostBefore"], report["hostAfter"]
    assert before["redis"]["dbsize"] == 300
    assert before["config"]["ours"] is False
    assert after["redis"]["dbsize"] == 300
    assert after["redis"]["digest"] == before["redis"]["digest"]
    assert after["redis"]["appendonly"] is True
    assert after["config"]["ours"] is True


def test_a_maxmemory_beyond_what_the_box_can_give_is_refused_before_any_change(tmp_path: Path) -> None:
    # Given a request for more memory than half the instance has (it shares the box with Asterisk)
    result, report = rehearse(tmp_path, inputs=[{"maxmemory": "4000gb"}])

    # Then preflight refuses it, naming the field and the numbers; nothing changed
    assert result.exit_code == 3, result.stderr
    assert report["error"] == "PreconditionFailed"
    assert "maxmemory" in report["cause"]
    assert report["differences"] == []
    assert "InstallRedis" not in report["statesEntered"]


def test_a_fail_at_point_no_run_reaches_is_a_usage_error_not_a_silent_success(tmp_path: Path) -> None:
    # CheckInstall fails, so the cutover and its restore never run: RestoreFunction#1 is never invoked
    result, report = rehearse(tmp_path, "--fail-at", "CheckInstall", "--fail-at", "RestoreFunction")

    assert result.exit_code == 2
    assert report["failPointsNotReached"] == ["RestoreFunction#1"]
    assert report["runs"][0]["exitCode"] == 3, report["runs"][0]["differences"]
    assert "RestoreFunction#1" in result.stderr


def test_a_utf16_input_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"release": "v1"}', encoding="utf-16")

    result = CliRunner().invoke(app, ["rehearse", "--input", str(path)])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not UTF-8" in result.stderr


def test_a_workdir_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "not-a-directory"
    path.write_text("x")

    result = CliRunner().invoke(app, ["rehearse", "--workdir", str(path)])

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_consistent_copy_carries_every_key_and_a_late_failure_leaves_elasticache_and_the_functions(
    tmp_path: Path,
) -> None:
    # Given ElastiCache holding a mix of keys (every type, TTLs, binary names, a few large keys), and
    # no writers (they would add keys as the copy goes: exact counts below; the ledger checks those)
    migrated, report = rehearse(
        tmp_path / "ok", "--seed-keys", "2000", "--data-copy", "consistent", "--client-writes", "0"
    )

    # Then the migration carries every one of them, verified key by key, with the writers frozen
    assert migrated.exit_code == 0, migrated.stderr
    data = report["data"]
    assert data["mode"] == "consistent"
    assert data["sourceKeys"] == data["copied"] == data["verified"] > 2000 * 0.9  # a few TTLs may run out
    assert (data["missing"], data["mismatched"]) == (0, 0)
    assert data["freezeSeconds"] is not None
    assert data["source"]["unchanged"] is True

    # And a run that fails after the copy (its last check), with the clients writing all along, leaves
    # ElastiCache and every function as they were, the writers' concurrency and the self-hosted Redis
    # included, and loses no acknowledged write
    failed, report = rehearse(
        tmp_path / "fails", "--seed-keys", "2000", "--data-copy", "consistent", "--fail-at", "VerifyCutover"
    )
    assert failed.exit_code == 3, report.get("differences")
    assert report["differences"] == []
    assert report["ledger"]["acknowledged"] > 0
    assert report["ledger"]["lost"] == 0
    assert report["data"]["source"]["unchanged"] is True
    assert "FreezeWriters" in report["statesEntered"]
    assert "RestoreWriterConcurrency" in report["statesEntered"]
    assert "ClearCopiedData" in report["statesEntered"]


def test_the_readme_command_works_with_a_relative_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the README's `make rehearse`: a workdir relative to the current directory (the servers
    # the rehearsal starts run in directories of their own)
    monkeypatch.chdir(tmp_path)
    # When it runs
    result = CliRunner().invoke(app, ["rehearse", "--functions", "2", "--workdir", "rehearsal-output"])
    # Then it migrates, and the report is where it said
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rehearsal-output" / "report.json").read_text())
    assert report["exitCode"] == 0
