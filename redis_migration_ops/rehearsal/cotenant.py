"""The sandbox's co-tenant: a stand-in for Asterisk, the service Redis must never hurt.

A voice call is a stream of packets every 20 ms (an RTP packet per 20 ms frame at the usual
ptime); a late wake-up of the process that sends them is a gap or jitter the caller hears. The
co-tenant program does what matters of that and nothing else: it holds memory (touched, so it is
resident, and one page of it is touched again at every wake-up, as a media process works through
its buffers), wakes every 20 ms on an absolute schedule, and records how late each wake-up was,
in microseconds, as little-endian unsigned 32-bit integers appended to a file in ``/run`` (tmpfs:
no disk IO of its own), flushed once a second.

:func:`install_cotenant` installs it in a sandbox host as ``asterisk.service`` (so the workflow's
default co-tenant, ``asterisk.service`` when present, finds it as it would on the guide's
instance) and starts it through the sandbox's ``systemctl``, which puts it in its own cgroup like
any unit. :func:`read_lateness` reads what it recorded, from any offset: a benchmark or a test
measures a window by remembering the offset at its start.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from redis_migration_ops.local_engine.sandbox_host import SandboxError, SandboxHost

UNIT = "asterisk"
COTENANT_SERVICE = f"{UNIT}.service"
PROGRAM_PATH = "/usr/local/bin/voice-cotenant"
LATENESS_FILE = "/run/voice-cotenant/lateness.u32"
PERIOD_MS = 20
SAMPLE = struct.Struct("<I")
START_DEADLINE_S = 10.0

PROGRAM = r'''#!/usr/bin/python3
"""voice-cotenant: holds memory, wakes every 20 ms like a voice stream's packets, records how late
each wake-up is (microseconds, u32 little-endian, appended to LATENESS_FILE once a second)."""
import os, signal, struct, sys, time

hold_mb = int(os.environ.get("COTENANT_HOLD_MB", "32"))
period_ns = int(os.environ.get("COTENANT_PERIOD_MS", "20")) * 1_000_000
path = os.environ.get("COTENANT_LATENESS_FILE", "/run/voice-cotenant/lateness.u32")
page = 4096
held = bytearray(hold_mb * 1024 * 1024)
for offset in range(0, len(held), page):
    held[offset] = 1  # resident, not a promise of memory
os.makedirs(os.path.dirname(path), exist_ok=True)
out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
pack = struct.Struct("<I").pack
pending = []
touch = 0
deadline = time.monotonic_ns() + period_ns
last_flush = time.monotonic()
print("READY", flush=True)
if os.environ.get("NOTIFY_SOCKET"):
    import socket
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    notify.close()
while not stopping:
    now = time.monotonic_ns()
    if deadline > now:
        time.sleep((deadline - now) / 1e9)
    woke = time.monotonic_ns()
    late_us = max(0, woke - deadline) // 1000
    pending.append(pack(min(late_us, 0xFFFFFFFF)))
    held[touch] = (held[touch] + 1) & 0xFF  # a frame's worth of work on the held buffers
    touch = (touch + page) % len(held)
    deadline += period_ns
    if woke > deadline:
        # Fell behind by more than a period: the missed wake-ups are gone, as lost packets are;
        # the schedule resumes from now rather than bursting to catch up.
        deadline = woke + period_ns - (woke - deadline) % period_ns
    if time.monotonic() - last_flush >= 1.0:
        os.write(out, b"".join(pending))
        pending.clear()
        last_flush = time.monotonic()
os.write(out, b"".join(pending))
'''


def unit_text(hold_mb: int) -> str:
    """The co-tenant's unit: a plain service, no resource settings of its own (systemd's defaults)."""
    return "\n".join(
        [
            "[Unit]",
            "Description=Voice co-tenant (stand-in for Asterisk): wakes every 20 ms, records lateness",
            "[Service]",
            "Type=notify",
            f"Environment=COTENANT_HOLD_MB={hold_mb} COTENANT_LATENESS_FILE={LATENESS_FILE}",
            f"ExecStart={PROGRAM_PATH}",
            "StandardOutput=file:/run/voice-cotenant.out",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def install_cotenant(sandbox: SandboxHost, *, hold_mb: int = 16) -> int:
    """Install and start the co-tenant as ``asterisk.service``; answer its pid inside the sandbox."""
    program = sandbox.host_path(PROGRAM_PATH)
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(PROGRAM)
    program.chmod(0o755)
    sandbox.host_path(f"/etc/systemd/system/{UNIT}.service").write_text(unit_text(hold_mb))
    started = sandbox.run_command([f"systemctl enable {UNIT}; systemctl start {UNIT}"], 60)
    if started.exit_code != 0:
        raise SandboxError(f"the co-tenant did not start: {started.stderr.strip()[-300:]}")
    pid = cotenant_pid(sandbox)
    if pid is None:
        raise SandboxError("the co-tenant started but has no main pid")
    return pid


def cotenant_pid(sandbox: SandboxHost) -> int | None:
    """The co-tenant's main pid inside the sandbox (None: not running)."""
    shown = sandbox.run_command([f"systemctl show -p MainPID --value {UNIT}"], 30).stdout.strip()
    return int(shown) if shown.isdigit() and int(shown) > 0 else None


def lateness_offset(sandbox: SandboxHost) -> int:
    """Where the next sample will be: a window starts here."""
    path = sandbox.host_path(LATENESS_FILE)
    return path.stat().st_size if path.exists() else 0


def read_lateness(sandbox: SandboxHost, offset: int = 0) -> list[int]:
    """The wake-up lateness (µs) recorded since ``offset`` (flushed once a second)."""
    path: Path = sandbox.host_path(LATENESS_FILE)
    if not path.exists():
        return []
    data = path.read_bytes()[offset:]
    usable = len(data) - len(data) % SAMPLE.size
    return [value for (value,) in SAMPLE.iter_unpack(data[:usable])]


def wait_for_samples(sandbox: SandboxHost, offset: int, count: int, timeout_s: float = 5.0) -> list[int]:
    """Samples since ``offset`` once at least ``count`` are flushed (bounded by ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = read_lateness(sandbox, offset)
        if len(samples) >= count or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


@dataclass(frozen=True)
class LatenessSummary:
    """Wake-ups of a window and how late they were (milliseconds)."""

    wakeups: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Wake-ups later than a whole period: the stream skipped a packet.
    missed_periods: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "wakeups": self.wakeups,
            "p50Ms": self.p50_ms,
            "p99Ms": self.p99_ms,
            "maxMs": self.max_ms,
            "missedPeriods": self.missed_periods,
        }


def percentile(values: list[int], share: float) -> float:
    """The nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return float(ordered[rank - 1])


def summarize(samples_us: list[int]) -> LatenessSummary:
    return LatenessSummary(
        wakeups=len(samples_us),
        p50_ms=round(percentile(samples_us, 0.50) / 1000, 3),
        p99_ms=round(percentile(samples_us, 0.99) / 1000, 3),
        max_ms=round(max(samples_us, default=0) / 1000, 3),
        missed_periods=sum(1 for value in samples_us if value >= PERIOD_MS * 1000),
    )


__all__ = [
    "COTENANT_SERVICE",
    "LATENESS_FILE",
    "UNIT",
    "LatenessSummary",
    "cotenant_pid",
    "install_cotenant",
    "lateness_offset",
    "read_lateness",
    "summarize",
    "wait_for_samples",
]
