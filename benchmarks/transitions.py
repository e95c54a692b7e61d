"""State transitions, cost, history and payload size of one migration, for N = 5 to 2,000 functions.

Runs full local rehearsals (real ASL, real handlers, a real sandboxed Redis) of the sample account
with every client function's name stretched to 64 characters (Lambda's longest) and prints, per N:
the state transitions (every state entered, Map iterations included: what STANDARD workflows
bill), the cost at $0.025 per 1,000 transitions, the history's events (Step Functions keeps at
most 25,000), the largest state input or output in the history (the limit is 256 KiB; the goal
half of it), the total seconds the workflow asked to wait (Wait states and Retry backoff; instant
locally, real on AWS), the install polls, and the wall time of the rehearsal.

The install's poll count depends on how long the install takes. Locally a wait lasts until the
real script finishes (or its seconds pass); the model at the end evaluates the ASL's own
WaitForInstall expression (with the template's defaults) for installs of 10 s to 10 min, each
check taking --check-latency seconds, and prints the checks, the time from sending the command
to the check that sees it finished, the overshoot and the extra transitions, beside the schedule
it replaced (2, 4, 8 s, then every 15 s). Its last line is the worst overshoot over every
install from 10 s to 600 s, in tenths of a second.

    .venv/bin/python benchmarks/transitions.py [--sizes 5 50 500 2000] [--check-latency 0.5] [--model-only]
"""

from __future__ import annotations

import argparse
import bisect
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonata

from redis_migration_ops.account.description import AccountDescription, sample_account
from redis_migration_ops.local_engine.template import load_template
from redis_migration_ops.rehearsal.migration import RehearsalOptions, rehearse

PRICE_PER_TRANSITION = 0.025 / 1000
POLL_STATES = ("WaitForInstall", "CheckInstall", "IsInstallFinished")


ROOT = Path(__file__).resolve().parent.parent
INSTALLS_S = (10, 30, 60, 120, 300, 600)
TRANSITIONS_PER_POLL = 3  # WaitForInstall, CheckInstall, IsInstallFinished
FIRST_WAIT_AT_S = 0.2  # InstallRedis returns right after SendCommand


class InstallWaits:
    """WaitForInstall's Seconds expression from the real ASL, evaluated at a chosen instant."""

    def __init__(self) -> None:
        state = json.loads((ROOT / "statemachine" / "migration.asl.json").read_text())["States"]
        source = str(state["WaitForInstall"]["Seconds"]).removeprefix("{%").removesuffix("%}").strip()
        parameters = load_template(ROOT / "template.yaml")["Parameters"]
        for name in ("InstallPollMaxSeconds", "InstallMaxPolls"):
            source = source.replace("${" + name + "}", str(parameters[name]["Default"]))
        self._expression = jsonata.Jsonata(source)
        self._now = ""
        self._expression.register_lambda("now", lambda: self._now)
        # As InstallRedis writes it: datetime.isoformat, microseconds and all.
        self._sent = datetime(2026, 1, 1, 0, 0, 0, 654321, tzinfo=UTC)

    def seconds(self, elapsed_s: float) -> float:
        """The wait the state asks for when entered ``elapsed_s`` after the command was sent."""
        now = self._sent + timedelta(seconds=elapsed_s)
        self._now = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return float(self._expression.evaluate(None, {"installCommand": {"sentAt": self._sent.isoformat()}}))


def replaced_seconds(polls_so_far: int) -> float:
    """The schedule this replaced: min(InstallPollMaxSeconds = 15, 2^(n+1))."""
    return float(min(15, 2 ** (polls_so_far + 1)))


def check_times(wait_for: Callable[[float, int], float], latency_s: float, until_s: float) -> list[float]:
    """When each check runs (seconds after sending) until one runs at or after ``until_s``."""
    elapsed = FIRST_WAIT_AT_S
    times: list[float] = []
    while elapsed < until_s and len(times) < 10_000:
        elapsed += wait_for(elapsed, len(times)) + latency_s
        times.append(elapsed)
    return times


def seen_finished(checks: list[float], install_s: float) -> tuple[int, float]:
    """(checks made, seconds from sending) at the first check after an ``install_s`` install."""
    index = bisect.bisect_left(checks, install_s)
    return index + 1, checks[index]


def print_polling_model(latency_s: float) -> None:
    """The install polling table on AWS's terms, for the ASL's schedule and the one it replaced."""
    waits = InstallWaits()
    schedules = {
        "now": check_times(lambda elapsed, _: waits.seconds(elapsed), latency_s, max(INSTALLS_S)),
        "before": check_times(lambda _, polls: replaced_seconds(polls), latency_s, max(INSTALLS_S)),
    }
    print(
        f"\nInstall polling on AWS ({TRANSITIONS_PER_POLL} transitions a poll: Wait, CheckInstall, "
        f"IsInstallFinished; each check takes {latency_s:g} s; waited = from sending the command "
        "to the check that sees it finished):"
    )
    print(
        f"{'install s':>9} {'polls':>5} {'waited s':>8} {'overshoot':>9} {'extra transitions':>17}"
        f"   {'before: polls':>13} {'waited s':>8} {'overshoot':>9}"
    )
    for install in INSTALLS_S:
        polls, waited = seen_finished(schedules["now"], install)
        old_polls, old_waited = seen_finished(schedules["before"], install)
        print(
            f"{install:>9} {polls:>5} {waited:>8.1f} {(waited - install) / install:>9.1%} "
            f"{TRANSITIONS_PER_POLL * polls:>17}   {old_polls:>13} {old_waited:>8.1f} "
            f"{(old_waited - install) / install:>9.1%}"
        )
    for label, checks in schedules.items():
        worst, at = max(
            ((seen_finished(checks, t / 10)[1] - t / 10) / (t / 10), t / 10) for t in range(100, 6001)
        )
        print(f"worst overshoot for installs of 10-600 s ({label}): {worst:.1%} (a {at:g} s install)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 500, 2000])
    parser.add_argument("--check-latency", type=float, default=0.5, help="seconds each install check takes")
    parser.add_argument("--model-only", action="store_true", help="print only the install polling model")
    args = parser.parse_args()
    if not args.model_only:
        print_rehearsals(args.sizes)
    print_polling_model(args.check_latency)


def long_named_account(size: int) -> AccountDescription:
    """The sample account with ``size`` clients, each named with 64 characters."""
    account = sample_account(size)
    functions = [
        function.model_copy(update={"name": f"{function.name}-{'x' * 64}"[:64]})
        if function.name.startswith("campaign-worker-")
        else function
        for function in account.functions
    ]
    return account.model_copy(update={"functions": functions})


def largest_payload(history: list[dict[str, Any]]) -> tuple[int, str]:
    """The largest state input, output or task parameters in bytes (UTF-8), and where it was."""
    largest, where = 0, ""
    for event in history:
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            for field in ("input", "output", "parameters"):
                text = details.get(field)
                if isinstance(text, str) and len(text.encode("utf-8")) > largest:
                    largest, where = len(text.encode("utf-8")), f"{event['type']}.{field}"
    return largest, where


def print_rehearsals(sizes: list[int]) -> None:
    """Full local rehearsals: transitions, cost, history events, payloads, waits and wall time per size."""
    header = (
        ("N", 5), ("transitions", 11), ("w/o polls", 9), ("polls", 5), ("cost $", 9), ("events", 6),
        ("largest KiB", 11), ("waits s", 8),
    )  # fmt: skip
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'wall s':>7}  largest payload at")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
            started = time.monotonic()
            result = rehearse(RehearsalOptions(account=long_named_account(size), workdir=Path(workdir)))
            wall = time.monotonic() - started
            history = json.loads((Path(workdir) / "history.json").read_text())
        report = result.report
        assert report["status"] == "SUCCEEDED", report.get("cause")
        entered = report["statesEntered"]
        polls = entered.count("CheckInstall")
        without_polls = len(entered) - sum(entered.count(s) for s in POLL_STATES)
        largest, where = largest_payload(history)
        print(
            f"{size:>5} {len(entered):>11} {without_polls:>9} {polls:>5} "
            f"{len(entered) * PRICE_PER_TRANSITION:>9.5f} {len(history):>6} {largest / 1024:>11.1f} "
            f"{report['requestedWaitSeconds']:>8.0f} {wall:>7.1f}  {where}"
        )


if __name__ == "__main__":
    main()
