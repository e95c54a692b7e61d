"""Cold start of every handler: what ``import app`` costs on top of ``import boto3``.

Each handler is imported as Lambda imports it: in a fresh interpreter, with the handler's
directory and the layer (``layers/shared``) first on ``sys.path``. The baseline is a fresh
``import boto3`` with the same path, since every function pays for boto3 whatever we do. Only
the import itself is timed (``time.perf_counter`` around it), not the interpreter's start-up.

Runs are interleaved (one baseline, then every handler once, per round) so that load from other
processes on the machine hits the baseline and the handlers alike; medians of ``--runs`` rounds
are printed. One warm-up round first writes the bytecode caches, as a second cold start would
find them.

    .venv/bin/python benchmarks/cold_start.py [--runs 5] [--limit-ms 150] [--python PATH]

The last line is the summary: ``cold start: worst <handler> +<ms> ms over import boto3 (limit
<ms> ms): OK|OVER``. The exit status is 1 when a handler is over the limit.
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
started = time.perf_counter()
import {module}
print(round((time.perf_counter() - started) * 1000, 2))
"""


def import_ms(python: str, module: str, paths: list[str]) -> float:
    """Milliseconds one fresh interpreter spends importing ``module`` with ``paths`` first."""
    code = PROBE.format(paths=paths, module=module)
    done = subprocess.run(
        [python, "-I", "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"import {module} failed with {paths[0]}:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


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
    baseline: list[float] = []
    timings: dict[str, list[float]] = {path.name: [] for path in functions}
    for round_number in range(args.runs + 1):
        boto3_ms = import_ms(args.python, "boto3", [str(LAYER)])
        app_ms = {path.name: import_ms(args.python, "app", [str(path), str(LAYER)]) for path in functions}
        if round_number == 0:
            continue  # the warm-up round: bytecode caches written, nothing recorded
        baseline.append(boto3_ms)
        for name, value in app_ms.items():
            timings[name].append(value)

    boto3_median = statistics.median(baseline)
    print(f"fresh imports, median of {args.runs} ({args.python}); import boto3 alone: {boto3_median:.0f} ms")
    print(f"{'handler':<24} {'import app ms':>13} {'import boto3 ms':>15} {'difference ms':>13} {'limit':>6}")
    worst_name, worst = "", float("-inf")
    for name, values in timings.items():
        median = statistics.median(values)
        difference = median - boto3_median
        verdict = "ok" if difference <= args.limit_ms else "OVER"
        print(f"{name:<24} {median:>13.0f} {boto3_median:>15.0f} {difference:>+13.0f} {verdict:>6}")
        if difference > worst:
            worst_name, worst = name, difference
    ok = worst <= args.limit_ms
    print(
        f"cold start: worst {worst_name} {worst:+.0f} ms over import boto3 "
        f"(limit {args.limit_ms:.0f} ms): {'OK' if ok else 'OVER'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
