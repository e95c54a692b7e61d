"""`rehearse` of a run that asks for approval, and an interrupted rehearsal (issue 17, point 15).

The sample start input (events/cli-start.json, ``"requireApproval": true``) used to stop at
WaitForApproval with nobody to answer; Ctrl-C did not end it. Now the rehearsal shows the request and
answers it (approve by default, or --reject), and SIGINT or SIGTERM stop it at once with nothing left
running: no sandbox process, no stand-in redis-server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.migration import REPO_ROOT

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)

SAMPLE_START = REPO_ROOT / "events" / "cli-start.json"
# Generous bounds for a loaded 2-core machine: the point is that the run does not wait for the gate's
# hour or the engine's grace; the time an interrupt takes is measured in docs, not asserted here.
INTERRUPT_DEADLINE_S = 60.0
REACH_DEADLINE_S = 300.0


def _rehearse(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, object]]:
    workdir = tmp_path / "rehearsal"
    result = CliRunner().invoke(
        app, ["rehearse", "--input", str(SAMPLE_START), "--workdir", str(workdir), *args]
    )
    report_path = workdir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    # (rich wraps long lines to the terminal's width: compare the words)
    return result.exit_code, " ".join(result.stderr.split()), report


def test_the_sample_start_input_shows_the_approval_request_and_approves_it(tmp_path: Path) -> None:
    # Given the sample start input: environment dev, requireApproval true
    # When it is rehearsed without saying how to answer
    code, stderr, report = _rehearse(tmp_path)
    # Then the request is shown, approved by the rehearsal (and it says so), and the run migrates
    assert code == 0, stderr
    assert "approving its approval gate (--reject to rehearse a rejection)" in stderr
    assert "approval requested: switch 5 function(s) (campaign-worker-001," in stderr
    assert "to 10.42.1.4:6379, release v2.14.0" in stderr
    assert "approved by the rehearsal (the default; --reject rehearses a rejection)" in stderr
    approval = report["approval"]
    assert isinstance(approval, dict)
    assert approval["decision"] == "approved"
    assert approval["request"]["event"] == "ApprovalNeeded"
    assert "taskToken" not in approval["request"]
    entered = report["statesEntered"]
    assert isinstance(entered, list)
    assert entered[entered.index("WaitForApproval") + 1] == "IsBaselineNeeded"
    assert "CutOverFunctions" in entered


def test_reject_rolls_the_rehearsed_run_back_before_any_function_is_switched(tmp_path: Path) -> None:
    code, stderr, report = _rehearse(tmp_path, "--reject")
    assert code == 3, stderr
    assert "rejected by the rehearsal (--reject)" in stderr
    assert report["error"] == "ApprovalRejected"
    assert "CutOverFunctions" not in report["statesEntered"]  # type: ignore[operator]
    functions = report["functions"]
    assert isinstance(functions, dict)
    assert all(entry["before"] == entry["after"] for entry in functions["clients"].values())


def test_approve_and_reject_together_are_refused(tmp_path: Path) -> None:
    code, stderr, _ = _rehearse(tmp_path, "--approve", "--reject")
    assert code == 2
    assert stderr.strip() == "error: --approve and --reject: choose one"


def _processes_naming(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line names ``text`` (the sandbox's unshare and the stand-in
    redis-server name paths inside the rehearsal's workdir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in command and state != "Z":
            found.append((int(entry.name), command[:120]))
    return found


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except OSError:
                continue
            pending += list(children - found)
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_rehearsal_stops_at_once_and_leaves_nothing_running(
    tmp_path: Path, signal_number: int, exit_code: int
) -> None:
    # Given a rehearsal of the sample start input, running its install in the sandbox host (the
    # sandbox and the ElastiCache stand-in are up)
    workdir = tmp_path / "rehearsal"
    log = tmp_path / "rehearse.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "redis_migration_ops", "rehearse", "--input", str(SAMPLE_START),
             "--workdir", str(workdir)],
            stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + REACH_DEADLINE_S
        while "→ CheckInstall" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the rehearsal never reached CheckInstall"
            time.sleep(0.2)
        started = _descendants(process.pid)
        assert _processes_naming(str(workdir)), "no sandbox or stand-in process to stop"
        # When it is interrupted
        process.send_signal(signal_number)
        # Then it ends with 128 + the signal's number, saying so, well before any engine grace
        # period or the gate's hour
        assert process.wait(timeout=INTERRUPT_DEADLINE_S) == exit_code, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output_text = log.read_text()
    assert f"interrupted ({signal.Signals(signal_number).name}): the rehearsal stopped" in output_text
    assert "Traceback" not in output_text
    # And nothing it started is left: no sandbox process, no stand-in redis-server
    deadline = time.monotonic() + 5
    while (
        left := [pid for pid in started if _alive(pid)] + [p for p, _ in _processes_naming(str(workdir))]
    ) and (time.monotonic() < deadline):
        time.sleep(0.1)
    assert not left, _processes_naming(str(workdir))
