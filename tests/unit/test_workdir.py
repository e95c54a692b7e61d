"""The rehearsal's workdir: owned while a rehearsal runs, cleaned when stale, a file refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from redis_migration_ops.rehearsal.workdir import LOCK_NAME, WorkdirError, WorkdirInUse, claim_workdir

HOLDER = """
import sys, time
from pathlib import Path
from redis_migration_ops.rehearsal.workdir import claim_workdir
with claim_workdir(Path(sys.argv[1])):
    print("claimed", flush=True)
    time.sleep(600)
"""


def start_holder(path: Path) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{root / 'layers' / 'shared'}:{root}"},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "claimed"
    return holder


def test_a_workdir_in_use_is_refused_naming_the_owner(tmp_path: Path) -> None:
    # Given a rehearsal (another process) that owns the workdir
    holder = start_holder(tmp_path)
    try:
        # When a second rehearsal claims it
        # Then it is refused, naming the owner's pid, and the owner's files are untouched
        (tmp_path / "report.json").write_text("{}")
        expected = rf"in use by a running rehearsal \(pid {holder.pid}\)"
        with pytest.raises(WorkdirInUse, match=expected), claim_workdir(tmp_path):
            pass
        assert (tmp_path / "report.json").exists()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_killed_rehearsal_leaves_a_stale_workdir_that_is_cleaned(tmp_path: Path) -> None:
    # Given a rehearsal that wrote its artefacts and was killed with SIGKILL
    holder = start_holder(tmp_path)
    for name in ("report.json", "history.json", "function-logs.jsonl"):
        (tmp_path / name).write_text("old run")
    (tmp_path / "host" / "upper").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("the operator's own file")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)

    # When the next rehearsal claims the workdir
    with claim_workdir(tmp_path) as claim:
        # Then it owns it, the old run's artefacts are gone, other files stay
        assert sorted(claim.cleaned) == ["function-logs.jsonl", "history.json", "host", "report.json"]
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "notes.txt"]
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_the_claim_is_released_at_the_end_of_the_block(tmp_path: Path) -> None:
    # Given a rehearsal that finished normally
    with claim_workdir(tmp_path):
        (tmp_path / "report.json").write_text("{}")

    # When the next one claims the workdir in the same process
    # Then it is not refused (the lock went with the block) and the old report is cleaned
    with claim_workdir(tmp_path) as claim:
        assert claim.cleaned == ["report.json"]


def test_a_workdir_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("not a directory")
    with pytest.raises(WorkdirError) as error, claim_workdir(target):
        pass
    assert str(error.value) == f"--workdir {target}: exists and is not a directory"
    assert "\n" not in str(error.value)
    assert target.read_text() == "not a directory"


def test_a_reused_workdir_starts_with_an_empty_elasticache_and_a_new_ledger(tmp_path: Path) -> None:
    # Given a workdir a finished rehearsal left: ElastiCache's append-only file, the write ledger
    aof = tmp_path / "elasticache" / "data" / "appendonlydir" / "appendonly.aof.1.incr.aof"
    aof.parent.mkdir(parents=True)
    aof.write_text("*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$1\r\n1\r\n")
    (tmp_path / "ledger.jsonl").write_text('{"client": "f1"}\n')
    # When a rehearsal claims it again
    with claim_workdir(tmp_path) as claim:
        # Then the previous ElastiCache data and ledger are gone
        assert not (tmp_path / "elasticache").exists()
        assert not (tmp_path / "ledger.jsonl").exists()
        assert {"elasticache", "ledger.jsonl"} <= set(claim.cleaned)
