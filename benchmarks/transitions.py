"""State transitions, cost and requested waits of one migration, for N = 5, 50 and 200 functions.

Runs full local rehearsals (real ASL, real handlers, a real sandboxed Redis) and prints, per N:
the state transitions (every state entered, Map iterations included: what STANDARD workflows
bill), the cost at $0.025 per 1,000 transitions, the total seconds the workflow asked to wait
(Wait states and Retry backoff; instant locally, real on AWS), the install polls, and the wall
time of the rehearsal.

The install's poll count depends on how long the install takes. Locally waits are instant, so
the loop spins until the real script finishes; the model at the end prints what the adaptive
wait (2, 4, 8 s, then every InstallPollMaxSeconds) costs for installs of 10 s to 10 min.

    .venv/bin/python benchmarks/transitions.py [--sizes 5 50 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from redis_migration_ops.rehearsal import RehearsalOptions, rehearse

PRICE_PER_TRANSITION = 0.025 / 1000
POLL_STATES = ("WaitForInstall", "CheckInstall", "IsInstallFinished")


def adaptive_polls(install_seconds: float, longest_wait: int = 15) -> tuple[int, int]:
    """(polls, seconds waited) of the ASL's wait formula min(longest, 2^(n+1)) for an install."""
    waited, polls = 0, 0
    while waited < install_seconds:
        waited += min(longest_wait, 2 ** (polls + 1))
        polls += 1
    return polls, waited


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 200])
    sizes = parser.parse_args().sizes
    header = ("N", 5), ("transitions", 11), ("w/o polls", 9), ("polls", 5), ("cost $", 9), ("waits s", 8)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'wall s':>7}")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
            started = time.monotonic()
            result = rehearse(RehearsalOptions(functions=size, workdir=Path(workdir)))
            wall = time.monotonic() - started
        report = result.report
        assert report["status"] == "SUCCEEDED", report.get("cause")
        entered = report["statesEntered"]
        polls = entered.count("CheckInstall")
        without_polls = len(entered) - sum(entered.count(s) for s in POLL_STATES)
        print(
            f"{size:>5} {len(entered):>11} {without_polls:>9} {polls:>5} "
            f"{len(entered) * PRICE_PER_TRANSITION:>9.5f} {report['requestedWaitSeconds']:>8.0f} {wall:>7.1f}"
        )
    print("\nInstall polling on AWS (3 transitions a poll: Wait, CheckInstall, IsInstallFinished):")
    print(f"{'install s':>9} {'polls':>5} {'waited s':>8} {'extra transitions':>17} {'fixed 60 s wait':>15}")
    for install in (10, 30, 60, 120, 300, 600):
        polls, waited = adaptive_polls(install)
        fixed_polls = -(-install // 60)
        fixed = f"{fixed_polls} polls, {fixed_polls * 60} s"
        print(f"{install:>9} {polls:>5} {waited:>8} {3 * polls:>17} {fixed:>15}")


if __name__ == "__main__":
    main()
