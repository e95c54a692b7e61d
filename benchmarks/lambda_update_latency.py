"""What Lambda's update latency costs the cutover: the product's write-and-wait per function.

On AWS an UpdateFunctionConfiguration stays InProgress for a few seconds (up to a minute in a
VPC); the cutover waits for it with the function_updated_v2 waiter (every 2 s). The local engine
models the latency (LocalEngine(lambda_update_seconds=S)). This runs the product's real
``write_variables`` (read, merge, write with RevisionId, wait) for N functions, CutoverConcurrency
at a time as the Map does, and prints the wall time and the waiter's polls for each latency.

    .venv/bin/python benchmarks/lambda_update_latency.py [--functions 20] [--latencies 0 3 10]
"""

from __future__ import annotations

import argparse
import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from redis_migration.aws import AwsClients
from redis_migration.steps.cut_over_function import write_variables

from redis_migration_ops.local_engine import LocalEngine

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "unit" / "local_engine" / "fixtures"


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


def measure(functions: int, latency: float, concurrency: int) -> tuple[float, int]:
    """(wall seconds, GetFunction polls) of switching ``functions`` functions."""
    with LocalEngine(FIXTURES, lambda_update_seconds=latency) as engine:
        client = engine.client("lambda")
        role = engine.client("iam").create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        names = [f"worker-{n:03d}" for n in range(functions)]
        for name in names:
            client.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": _zip()},
                Environment={"Variables": {"REDIS_HOST": "old"}},
            )
        polls: list[str] = []
        client.meta.events.register("before-call.lambda.GetFunction", lambda **_: polls.append("poll"))
        aws = AwsClients(factory=engine.client)

        def switch(name: str) -> None:
            config = client.get_function_configuration(FunctionName=name)
            write_variables(
                name, dict(config["Environment"]["Variables"]), {"REDIS_HOST": "10.0.0.5"}, config, aws
            )

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(switch, names))
        return time.monotonic() - started, len(polls)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--functions", type=int, default=20)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--concurrency", type=int, default=10)
    arguments = parser.parse_args()
    print(f"{'latency s':>9} {'functions':>9} {'wall s':>7} {'polls':>6} {'s/function':>10}")
    for latency in arguments.latencies:
        wall, polls = measure(arguments.functions, latency, arguments.concurrency)
        per_function = wall / arguments.functions
        print(f"{latency:>9.1f} {arguments.functions:>9} {wall:>7.1f} {polls:>6} {per_function:>10.2f}")


if __name__ == "__main__":
    main()
