"""The co-tenant's lateness while Redis works beside it: with our limits, and without them, in one run.

The sandbox host runs the co-tenant (``asterisk.service``, a stand-in for Asterisk: it holds
memory and wakes every 20 ms like a voice stream's packets, recording how late each wake-up is;
see ``redis_migration_ops/rehearsal/cotenant.py``) and the self-hosted Redis, installed by the real
install script. Each phase, on an emptied Redis:

1. the data copy: the workflow's own copier (``redis_migration.data.copy.copy_data``) moves
   ``--keys`` keys of ``--value-bytes`` from a source Redis (the ElastiCache stand-in's role) into
   it;
2. half-way through the copy, a save and an AOF rewrite: BGSAVE, then BGREWRITEAOF (both fork; the
   rewrite waits for the save), so the forks run under writes (copy-on-write), as ``save 300 1``
   firing during a copy would; the phase ends when the copy, the save and the rewrite are done;

and the co-tenant's wake-ups of the phase are its samples. Phases alternate between the two
configurations, ``--rounds`` times each (the machine is shared: alternating spreads its load over
both): "with limits", the drop-in the workflow writes (the preflight's budget for the instance as
inspected, ``maxmemory`` 512mb: MemoryHigh, MemoryMax, CPUWeight 50, IOWeight 50,
OOMScoreAdjust 1000), applied by the sandbox's systemd stand-in to Redis's cgroup; "without", no
drop-in (Redis restarted without it). An idle phase (no work) first shows the machine's own noise.

What the sandbox cannot be: the copier and the source Redis run on the same CPUs as the instance
(on AWS the copier is a Lambda function and the source is ElastiCache); both run in the benchmark's
own cgroup, in the sandbox's network namespace (no forwarder in the path), equally in both
configurations. Nor are the CPUs the instance's own: the machine is shared, and its other work
competes with the co-tenant whatever Redis does (the idle phase shows how much).
``--instance-cpus`` gives the sandbox's cgroup the largest CPU weight of the machine
(``cpu.shares`` 262144) for the run, so that, as on an instance, the co-tenant and Redis compete
with each other first; it takes CPU from whatever else runs on the machine, so it is off by default.
On this machine (cgroup v1) MemoryHigh and IOWeight are not applied (systemd does not apply
MemoryHigh on v1; the kernel offers no blkio.weight here): the limits that act are MemoryMax, the
CPU weight and the OOM score.

The last line reads ``co-tenant: p99 <A> ms with limits, <B> ms without, max <C> ms`` (C: the
largest lateness with limits; the largest without is on the line before). Goal: A <= 2 ms.

    sudo .venv/bin/python benchmarks/cotenant.py [--keys 100000] [--value-bytes 512] [--rounds 3]
        [--hold-mb 64] [--instance-cpus]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis_migration.data.copy import copy_data
from redis_migration.data.link import Credentials, RedisEndpoint

PRIVATE_IP = "10.0.1.23"
SOURCE_PORT = 6390
CLONE_NEWNET = 0x40000000
PHASE_DEADLINE_S = 300.0
FLUSH_WAIT_S = 1.2  # the co-tenant flushes its samples once a second


def enter_network_namespace(path: str) -> None:
    """(In the child) join the sandbox's network namespace: its 127.0.0.1 is the instance's."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


def child_copy(arguments: dict[str, Any]) -> None:
    """(In the child process) copy the source into the target with the workflow's copier."""
    enter_network_namespace(arguments["netns"])
    source = RedisEndpoint(host="127.0.0.1", port=arguments["source_port"])
    target = RedisEndpoint(host="127.0.0.1", port=6379)
    started = time.perf_counter()
    progress = None
    while progress is None or not progress.done:
        progress = copy_data(
            source,
            Credentials(username=None, password=None),
            target,
            Credentials(username=None, password=arguments["password"]),
            progress=progress,
            time_budget_s=120,
        )
    print(
        json.dumps({"seconds": time.perf_counter() - started, "counters": progress.counters.to_json_dict()})
    )


def start_copy(netns: str, password: str) -> subprocess.Popen[str]:
    """The copier in a child process (the password through stdin, never the command line)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child-copy"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    child.stdin.write(json.dumps({"netns": netns, "source_port": SOURCE_PORT, "password": password}))
    child.stdin.close()
    return child


def finish_copy(child: subprocess.Popen[str]) -> dict[str, Any]:
    # The child prints one line (or a traceback): far below a pipe's buffer, so waiting first is safe.
    child.wait(timeout=PHASE_DEADLINE_S)
    assert child.stdout is not None
    assert child.stderr is not None
    stdout, stderr = child.stdout.read(), child.stderr.read()
    if child.returncode != 0:
        raise RuntimeError(f"the copy failed: {stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--value-bytes", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hold-mb", type=int, default=64, help="memory the co-tenant holds")
    parser.add_argument(
        "--instance-cpus",
        action="store_true",
        help="give the sandbox the machine's largest CPU weight, as if the CPUs were the instance's",
    )
    parser.add_argument("--child-copy", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child_copy:
        child_copy(json.loads(sys.stdin.read()))
        return

    # The operator tooling (moto comes with it) only in the parent: the child is a copier.
    import redis  # noqa: PLC0415
    from redis_migration.host.budget import assess_budget  # noqa: PLC0415
    from redis_migration.host.install import (  # noqa: PLC0415
        LIMITS_DROPIN_NAME,
        InstallParameters,
        build_install_commands,
        parse_install_result,
        password_sha256,
    )
    from redis_migration.host.state import build_inspect_commands, parse_inspect_result  # noqa: PLC0415

    from redis_migration_ops.local_engine.sandbox_host import SandboxHost  # noqa: PLC0415
    from redis_migration_ops.rehearsal.cotenant import (  # noqa: PLC0415
        COTENANT_SERVICE,
        cotenant_pid,
        install_cotenant,
        lateness_offset,
        read_lateness,
        summarize,
    )

    missing = SandboxHost.missing_requirements()
    if missing:
        sys.exit("cotenant: the sandbox host needs " + ", ".join(missing))
    password = secrets.token_hex(16)
    with (
        tempfile.TemporaryDirectory(prefix="cotenant-bench-") as directory,
        SandboxHost(Path(directory) / "host", PRIVATE_IP) as sandbox,
    ):
        print(f"cgroup controllers for the limits: {', '.join(sandbox.cgroup_controllers) or 'none'}")
        sandbox_cpu = sandbox.cgroup_path("cpu", "/")
        if arguments.instance_cpus:
            if sandbox_cpu is None:
                sys.exit("cotenant: --instance-cpus needs the cpu controller")
            (sandbox_cpu / "cpu.shares").write_text("262144")
            print("instance CPUs: the sandbox's cgroup has cpu.shares 262144")
        print(f"machine load: {Path('/proc/loadavg').read_text().split()[0]} on {os.cpu_count()} CPUs")
        co_tenant = install_cotenant(sandbox, hold_mb=arguments.hold_mb)
        inspected = parse_inspect_result(
            sandbox.run_command(
                build_inspect_commands(6379, co_tenants_if_present=[COTENANT_SERVICE]), 120
            ).stdout
        )
        if inspected is None or inspected.state is None:
            sys.exit("cotenant: the inspect failed")
        assessment = assess_budget(inspected.state, "512mb")
        if assessment.limits is None or assessment.problems:
            sys.exit(f"cotenant: no limits for this instance: {assessment.problems or assessment.warnings}")
        limits = assessment.limits
        print(f"limits: {limits.model_dump()}")
        installed = parse_install_result(
            sandbox.run_command(
                build_install_commands(
                    InstallParameters(
                        bind_addresses=[PRIVATE_IP, "127.0.0.1"],
                        password_sha256=password_sha256(password),
                        maxmemory="512mb",
                        limits=limits,
                    )
                ),
                300,
            ).stdout
        )
        if installed is None or not installed.ok:
            sys.exit(f"cotenant: the install failed: {installed}")
        dropin = f"/etc/systemd/system/redis-server.service.d/{LIMITS_DROPIN_NAME}"
        dropin_text = sandbox.host_path(dropin).read_text()
        started = sandbox.run_command(
            [
                f"redis-server --port {SOURCE_PORT} --bind 127.0.0.1 --save '' --appendonly no "
                "--daemonize yes --enable-debug-command yes --dir /tmp --logfile /tmp/source.log",
                f"sleep 0.5; redis-cli -p {SOURCE_PORT} DEBUG POPULATE {arguments.keys} key "
                f"{arguments.value_bytes}",
            ],
            120,
        )
        if "OK" not in started.stdout:
            sys.exit(f"cotenant: the source did not start: {started.stdout[-300:]}{started.stderr[-300:]}")
        netns = f"/proc/{sandbox.init_pid}/ns/net"
        host, port = sandbox.loopback_address(6379)

        def configure(with_limits: bool) -> None:
            path = sandbox.host_path(dropin)
            if with_limits:
                path.write_text(dropin_text)
            else:
                path.unlink(missing_ok=True)
            sandbox.run_command(["systemctl daemon-reload; systemctl restart redis-server"], 120)

        def phase(work: bool) -> list[int]:
            client = redis.Redis(host=host, port=port, password=password, socket_timeout=120)
            deadline = time.monotonic() + PHASE_DEADLINE_S
            while True:
                try:
                    client.flushall()
                    break
                except redis.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            time.sleep(FLUSH_WAIT_S)
            offset = lateness_offset(sandbox)
            if work:
                saves = client.info("persistence")["rdb_saves"]
                copier = start_copy(netns, password)
                while client.dbsize() < arguments.keys // 2 and copier.poll() is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the copy did not get half-way")
                    time.sleep(0.02)
                # SCHEDULE: an automatic AOF rewrite may already run; the save follows it
                client.bgsave(schedule=True)
                try:
                    client.bgrewriteaof()
                except redis.ResponseError as error:  # one already runs: that one counts
                    if "already in progress" not in str(error):
                        raise
                copied = finish_copy(copier)
                while time.monotonic() < deadline:
                    info = client.info("persistence")
                    busy = info["rdb_bgsave_in_progress"] or info["aof_rewrite_in_progress"]
                    if not busy and not info["aof_rewrite_scheduled"] and info["rdb_saves"] > saves:
                        break
                    time.sleep(0.05)
                restored = copied["counters"].get("restored")
                print(f"  copied {restored} keys in {copied['seconds']:.1f} s, saved, rewrote")
            else:
                time.sleep(5)
            time.sleep(FLUSH_WAIT_S)
            client.close()
            return read_lateness(sandbox, offset)

        idle = summarize(phase(work=False))
        print(
            f"idle: p50 {idle.p50_ms} ms, p99 {idle.p99_ms} ms, max {idle.max_ms} ms "
            f"({idle.wakeups} wake-ups)"
        )
        samples: dict[bool, list[int]] = {True: [], False: []}
        for round_ in range(1, arguments.rounds + 1):
            for with_limits in (False, True):
                configure(with_limits)
                taken = phase(work=True)
                samples[with_limits] += taken
                shown = summarize(taken)
                label = "with limits" if with_limits else "without"
                print(
                    f"round {round_} {label}: p50 {shown.p50_ms} ms, p99 {shown.p99_ms} ms, "
                    f"max {shown.max_ms} ms, {shown.missed_periods} missed periods ({shown.wakeups} wake-ups)"
                )
        if cotenant_pid(sandbox) != co_tenant:
            print("the co-tenant was restarted or killed during the run")
        limited, unlimited = summarize(samples[True]), summarize(samples[False])
        print(
            f"without limits: p50 {unlimited.p50_ms} ms, max {unlimited.max_ms} ms, "
            f"{unlimited.missed_periods} missed periods of {unlimited.wakeups}; "
            f"with limits: p50 {limited.p50_ms} ms, "
            f"{limited.missed_periods} missed periods of {limited.wakeups}"
        )
        print(
            f"co-tenant: p99 {limited.p99_ms} ms with limits, {unlimited.p99_ms} ms without, "
            f"max {limited.max_ms} ms"
        )


if __name__ == "__main__":
    main()
