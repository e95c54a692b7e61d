"""The cutover window, measured: how long some functions use the new Redis and others the old one.

Lambda applies a configuration update a few seconds after UpdateFunctionConfiguration (the local
engine models it: LocalEngine(lambda_update_seconds=...)); the cutover waits for each one
(function_updated_v2). This runs the real workflow (rehearsal set-up: real ASL, real handlers,
sandboxed Redis) on N functions twice — once with the stack's CutoverConcurrency, once one by one
(CutoverConcurrency=1) — and prints how long the cutover took each way, the ratio, and the window:
from the first function switched to the last (the time during which writes can land in either
Redis; the data copy's consistent mode freezes the writers for it).

    .venv/bin/python benchmarks/cutover_window.py [--functions 50] [--latency 2] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from redis_migration_ops.rehearsal.migration import LocalSetup, local_setup


def _seconds(timestamp: Any) -> float:
    return (
        timestamp.timestamp()
        if isinstance(timestamp, datetime)
        else datetime.fromisoformat(str(timestamp)).timestamp()
    )


def measure(functions: int, latency: float, concurrency: int) -> dict[str, float]:
    """Cutover seconds (the CutOverFunctions Map) and the window (first to last switch) for one run."""
    with (
        tempfile.TemporaryDirectory(prefix="cutover-window-") as workdir,
        local_setup(
            Path(workdir),
            functions,
            lambda_update_seconds=latency,
            parameters={"CutoverConcurrency": str(concurrency)},
        ) as setup,
    ):
        run = setup.run(name=f"window-c{concurrency}")
        if run.described["status"] != "SUCCEEDED":
            raise SystemExit(
                f"the migration failed: {run.described.get('error')}: {run.described.get('cause')}"
            )
        entered = exited = None
        for event in run.history:
            details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
            if details.get("name") == "CutOverFunctions":
                if event["type"] == "MapStateEntered":
                    entered = _seconds(event["timestamp"])
                elif event["type"] == "MapStateExited":
                    exited = _seconds(event["timestamp"])
        switched = _switch_times(setup)
    if entered is None or exited is None:
        raise SystemExit("no CutOverFunctions in the history")
    return {
        "cutoverSeconds": exited - entered,
        # A function serves its new values once its update has finished (latency after the write).
        "windowSeconds": max(switched) - min(switched),
    }


def _switch_times(setup: LocalSetup) -> list[float]:
    applied = setup.engine.lambda_updates_applied_at
    return [applied[name] for name in setup.account.client_functions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=50)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds a Lambda update stays InProgress")
    parser.add_argument(
        "--concurrency", type=int, default=10, help="CutoverConcurrency (the stack's default: 10)"
    )
    arguments = parser.parse_args()
    parallel = measure(arguments.functions, arguments.latency, arguments.concurrency)
    serial = measure(arguments.functions, arguments.latency, 1)
    ratio = parallel["cutoverSeconds"] / serial["cutoverSeconds"]
    print(f"functions: {arguments.functions}; Lambda update latency: {arguments.latency:g} s")
    print(
        f"one by one (CutoverConcurrency=1):  cutover {serial['cutoverSeconds']:.1f} s, "
        f"window {serial['windowSeconds']:.1f} s"
    )
    print(
        f"concurrency {arguments.concurrency} (CutoverConcurrency={arguments.concurrency}): cutover "
        f"{parallel['cutoverSeconds']:.1f} s, window {parallel['windowSeconds']:.1f} s"
    )
    verdict = "meets" if ratio <= 1 / 8 else "MISSES"
    print(
        f"cutover-window: {parallel['cutoverSeconds']:.1f} s at concurrency {arguments.concurrency} vs "
        f"{serial['cutoverSeconds']:.1f} s one by one, ratio {ratio:.3f} ({verdict} <= 1/8); "
        f"mixed-Redis window {parallel['windowSeconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
