"""Cold start of every handler: what ``import app`` costs on top of ``import boto3``.

Each handler is imported as Lambda imports it: in a fresh interpreter, with the handler's
directory and the layer (``layers/shared``) first on ``sys.path``. The baseline is a fresh
``import boto3`` with the same path, since every function pays for boto3 whatever we do. Only
the import itself is timed, not the interpreter's start-up: its wall time (``perf_counter``,
what a cold start waits) and its CPU time (``process_time``, which other processes on a busy
machine hardly change; imports are CPU-bound once the files are in the page cache).

Runs are interleaved (one baseline, then every handler once, per round) so that load from other
processes on the machine hits the baseline and the handlers alike; medians of ``--runs`` rounds
are printed. One warm-up round first writes the bytecode caches, as a second cold start would
find them.

    .venv/bin/python benchmarks/cold_start.py [--runs 5] [--limit-ms 150] [--python PATH]

The last line is the summary: ``cold start: worst <handler> +<ms> ms wall, worst <handler> +<ms>
ms CPU over import boto3 (limit <ms> ms): wall OK|OVER, CPU OK|OVER``. The exit status is 1 when
a handler is over the limit in wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "shared"
FUNCTIONS = ROOT / "functions"

# -I: no PYTHONPATH, no user site, no current directory: only the paths we put first count.
PROBE = """
import sys, time
sys.path[:0] = {paths!r}
started, cpu = time.perf_counter(), time.process_time()
import {module}
print(round((time.perf_counter() - started) * 1000, 2), round((time.process_time() - cpu) * 1000, 2))
"""


def import_ms(python: str, module: str, paths: list[str]) -> tuple[float, float]:
    """(wall, CPU) milliseconds one fresh interpreter spends importing ``module``, ``paths`` first."""
    code = PROBE.format(paths=paths, module=module)
    done = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"import {module} failed with {paths[0]}:\n{done.stderr}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def handlers() -> list[Path]:
    """Every function directory with an ``app.py``, in name order."""
    return sorted(path.parent for path in FUNCTIONS.glob("*/app.py"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh imports per handler (median)")
    parser.add_argument("--limit-ms", type=float, default=150.0, help="allowed cost over import boto3")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the layer's dependencies")
    args = parser.parse_args()

    functions = handlers()
    baseline: list[tuple[float, float]] = []
    timings: dict[str, list[tuple[float, float]]] = {path.name: [] for path in functions}
    for round_number in range(args.runs + 1):
        boto3_ms = import_ms(args.python, "boto3", [str(LAYER)])
        app_ms = {path.name: import_ms(args.python, "app", [str(path), str(LAYER)]) for path in functions}
        if round_number == 0:
            continue  # the warm-up round: bytecode caches written, nothing recorded
        baseline.append(boto3_ms)
        for name, value in app_ms.items():
            timings[name].append(value)

    boto3_wall = statistics.median(wall for wall, _ in baseline)
    boto3_cpu = statistics.median(cpu for _, cpu in baseline)
    print(
        f"fresh imports, median of {args.runs} ({args.python}); import boto3 alone: "
        f"{boto3_wall:.0f} ms wall, {boto3_cpu:.0f} ms CPU"
    )
    print(
        f"{'handler':<26} {'import app ms':>13} {'import boto3 ms':>15} {'difference ms':>13} {'limit':>5}"
        f"   {'CPU: app ms':>11} {'boto3 ms':>8} {'difference ms':>13}"
    )
    worst: dict[str, tuple[float, str]] = {"wall": (float("-inf"), ""), "CPU": (float("-inf"), "")}
    for name, values in timings.items():
        wall = statistics.median(value for value, _ in values) - boto3_wall
        cpu = statistics.median(value for _, value in values) - boto3_cpu
        verdict = "ok" if wall <= args.limit_ms else "OVER"
        print(
            f"{name:<26} {wall + boto3_wall:>13.0f} {boto3_wall:>15.0f} {wall:>+13.0f} {verdict:>5}"
            f"   {cpu + boto3_cpu:>11.0f} {boto3_cpu:>8.0f} {cpu:>+13.0f}"
        )
        worst["wall"] = max(worst["wall"], (wall, name))
        worst["CPU"] = max(worst["CPU"], (cpu, name))
    verdicts = {kind: "OK" if value <= args.limit_ms else "OVER" for kind, (value, _) in worst.items()}
    print(
        f"cold start: worst {worst['wall'][1]} {worst['wall'][0]:+.0f} ms wall, worst {worst['CPU'][1]} "
        f"{worst['CPU'][0]:+.0f} ms CPU over import boto3 (limit {args.limit_ms:.0f} ms): "
        f"wall {verdicts['wall']}, CPU {verdicts['CPU']}"
    )
    return 0 if verdicts["wall"] == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main())
