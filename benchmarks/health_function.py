"""Health function benchmark: duration of a warm run against a local redis-server, and cold-start import time.

Run: ``.venv/bin/python benchmarks/health_function.py [--runs 50]``. Starts its own redis-server
on a free 127.0.0.1 port (the install's ACL line, AOF on), runs the real handler with moto for EC2
and Secrets Manager and the local engine's NetworkGuard mapping the instance's private IP to that
server. The cold start is ``import app`` of the handler in fresh interpreters (median of 5).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import secrets
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from moto import mock_aws

from redis_migration_ops.local_engine.ec2.network_guard import AddressMap, NetworkGuard
from redis_migration_ops.local_engine.lambda_.in_process import LambdaContext
from redis_migration_ops.rehearsal.local_redis import local_redis_server

REPO = Path(__file__).resolve().parents[1]
HANDLER = REPO / "functions" / "redis_health" / "app.py"


def cold_import_seconds(samples: int = 5) -> float:
    code = (
        "import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[2]]; t = time.perf_counter(); "
        "import app; print(time.perf_counter() - t)"
    )
    env = {
        **os.environ,
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "POWERTOOLS_SERVICE_NAME": "redis-migration",
    }
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", code, str(HANDLER.parent), str(REPO / "layers" / "shared")],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )  # fmt: skip
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    with (
        tempfile.TemporaryDirectory(prefix="health-bench-") as workdir,
        local_redis_server(Path(workdir), password) as port,
    ):
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "PROJECT_NAME": "campaign-system",
                "ENVIRONMENT": "dev",
                "POWERTOOLS_METRICS_NAMESPACE": "CampaignSystem/Redis",
                "POWERTOOLS_SERVICE_NAME": "redis-migration",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        routes = AddressMap()
        guard = NetworkGuard(routes)
        with mock_aws():
            ec2 = boto3.client("ec2")
            image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
            instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
            os.environ["INSTANCE_ID"] = instance["InstanceId"]
            boto3.client("secretsmanager").create_secret(
                Name="campaign-system-redis-password-dev", SecretString=json.dumps({"password": password})
            )
            routes.add(instance["PrivateIpAddress"], 6379, ("127.0.0.1", port))
            guard.install()
            try:
                spec = importlib.util.spec_from_file_location("redis_health_app", HANDLER)
                if spec is None or spec.loader is None:
                    sys.exit(f"cannot load {HANDLER}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                context = LambdaContext(
                    "RedisHealth", "arn:aws:lambda:us-east-1:123456789012:function:h", 256, 20
                )
                durations = []
                for _ in range(args.runs + 1):
                    started = time.perf_counter()
                    with contextlib.redirect_stdout(io.StringIO()):
                        result = module.lambda_handler({}, context)
                    durations.append((time.perf_counter() - started) * 1000)
                    if not result["healthy"]:
                        sys.exit(f"unhealthy: {result['reason']}")
            finally:
                guard.uninstall()
    first, warm = durations[0], sorted(durations[1:])
    print(f"first run (describe + secret on moto, then INFO): {first:8.2f} ms")
    print(
        f"warm runs ({len(warm)}): p50 {statistics.median(warm):.2f} ms, "
        f"p95 {warm[int(0.95 * (len(warm) - 1))]:.2f} ms, max {warm[-1]:.2f} ms"
    )
    print(
        f"cold import of the handler (median of 5 fresh interpreters): {cold_import_seconds() * 1000:8.1f} ms"
    )


if __name__ == "__main__":
    main()
