"""A sandbox dies with the process that owns it, however that process ends (SIGKILL included).

The owner is a child Python process: it starts a sandbox, starts redis-server in it, leaves a
command running through ``nsenter`` (as a SendCommand would), prints every pid involved and waits.
The test kills it with SIGKILL (no handler, no ``finally``) and then looks for each pid, and for
any process still in the sandbox's PID namespace, for at most 5 seconds.
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

from tests.host.conftest import sandbox_skip_reason

pytestmark = pytest.mark.host

DEADLINE_S = 5.0

OWNER_PROGRAM = r"""
import json, sys, threading, time
from pathlib import Path
from redis_migration_ops.local_engine.sandbox_host import SandboxHost

host = SandboxHost(Path(sys.argv[1]), "10.0.1.23")
host.start()
started = host.run_command(
    ["redis-server --port 6390 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no"
     " --logfile /tmp/redis.log --pidfile /tmp/redis.pid",
     "for i in $(seq 50); do [ -s /tmp/redis.pid ] && break; sleep 0.1; done; cat /tmp/redis.pid"], 30)
redis_inside = int(started.stdout.split()[-1])
# A command that is still running when the owner dies, forked by a worker thread.
threading.Thread(target=host.run_command, args=(["sleep 300"], 600), daemon=True).start()
time.sleep(0.5)
print(json.dumps({
    "unshare": host._unshare.pid,
    "init": host.init_pid,
    "redis": host.host_pid(redis_inside),
    "pidns": __import__("os").readlink(f"/proc/{host.init_pid}/ns/pid"),
}), flush=True)
time.sleep(600)
"""


def processes_in_namespace(pidns: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns/pid") == pidns:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def nsenter_children_of(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-eo", "pid,ppid,comm"], capture_output=True, text=True, check=True)
    return [
        int(fields[0])
        for fields in (line.split() for line in result.stdout.splitlines()[1:])
        if int(fields[1]) == pid and fields[2] in {"nsenter", "setpriv"}
    ]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_sigkill_of_the_owner_leaves_nothing_of_the_sandbox(tmp_path: Path) -> None:
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    # Given a process that owns a sandbox with redis-server and an nsenter command running in it
    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_PROGRAM, str(tmp_path / "sandbox")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": f"{root / 'layers' / 'shared'}:{root}"},
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, "the owner did not report its sandbox"
        pids = json.loads(line)
        nsenters = nsenter_children_of(owner.pid)
        assert nsenters, "no nsenter command was running"
        watched = [pids["unshare"], pids["init"], pids["redis"], *nsenters]
        assert all(alive(pid) for pid in watched)
        assert processes_in_namespace(pids["pidns"])

        # When the owner is killed with SIGKILL
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)

        # Then within 5 seconds nothing of the sandbox is left: no unshare, init, redis, nsenter,
        # nor any other process of its PID namespace
        deadline = time.monotonic() + DEADLINE_S
        left = watched
        while time.monotonic() < deadline:
            left = [pid for pid in watched if alive(pid)] + processes_in_namespace(pids["pidns"])
            if not left:
                break
            time.sleep(0.1)
        assert left == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=10)
