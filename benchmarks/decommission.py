"""State transitions, cost, requested waits and wall time of one decommission.

Runs `rehearse --decommission` (a migration, then its decommission with the final snapshot
exported) and prints, for the decommission alone: the state transitions (what a STANDARD workflow
bills), the cost at $0.025 per 1,000 transitions, the seconds the workflow asked to wait (the
snapshot, export and deletion poll loops, the "in use" retries: instant locally, real on AWS), the
polls of each loop, and the wall time. The local engine's ElastiCache takes 120 s to snapshot, 90 s
to export and 480 s to delete (``ElastiCacheTimings``); AWS takes minutes to tens of minutes.

    .venv/bin/python benchmarks/decommission.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from redis_migration_ops.rehearsal.decommission import rehearse_decommission
from redis_migration_ops.rehearsal.migration import RehearsalOptions

PRICE_PER_TRANSITION = 0.025 / 1000
POLLS = ("CheckFinalSnapshot", "CheckExportedSnapshot", "CheckReplicationGroupDeleted")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--functions", type=int, default=5)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="redis-migration-decommission-benchmark-"))
    started = time.monotonic()
    result = rehearse_decommission(RehearsalOptions(functions=arguments.functions, workdir=workdir))
    wall = time.monotonic() - started
    report = result.report["decommission"]
    if report is None:
        raise SystemExit(f"the migration did not succeed: {result.report.get('error')}")
    history = json.loads((workdir / "decommission-history.json").read_text())
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    waits = Counter[str]()
    for event in history:
        details = event.get("stateEnteredEventDetails")
        if (
            details
            and details["name"].startswith("WaitFor")
            and details["name"] != "WaitForDecommissionApproval"
        ):
            waits[details["name"]] += 1
    counts = Counter(entered)
    print(f"decommission: {report['status']} ({report['outcome']})")
    print(f"transitions: {len(entered)}  cost: ${len(entered) * PRICE_PER_TRANSITION:.5f}")
    for state in POLLS:
        print(f"  {state}: {counts[state]} poll(s)")
    print(f"  Wait states entered: {dict(waits)}")
    print(f"monthly saving: {report['saving']}")
    print(f"wall time (setup, migration and decommission): {wall:.1f} s")


if __name__ == "__main__":
    main()
