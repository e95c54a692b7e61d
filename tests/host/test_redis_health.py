"""The health check and the scheduled health function against a real redis-server on 127.0.0.1.

The redis-server is started here on a free loopback port with the install's ACL line (the SHA-256
of the password), AOF on and a small maxmemory so evictions really happen. The function runs
through its real handler with moto for EC2 and Secrets Manager; moto reports a private IP for the
instance, and the local engine's NetworkGuard sends that address to the loopback server (anything
else is refused before a packet leaves).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import secrets
import shutil
import string
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
import redis
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from redis_migration.watch import monitoring
from redis_migration.watch.health import check_redis_health

from redis_migration_ops.local_engine.ec2.network_guard import AddressMap, NetworkGuard
from redis_migration_ops.local_engine.lambda_.in_process import LambdaContext
from redis_migration_ops.local_engine.template import TemplateResolver, load_template
from redis_migration_ops.rehearsal.local_redis import free_port, local_redis_server
from tests.conftest import REPO, TEMPLATE_PATH

pytestmark = pytest.mark.host

NAMESPACE = "CampaignSystem/Redis"
ENVIRONMENT = "dev"
PROJECT = "campaign-system"
REDIS_PORT = 6379
MAXMEMORY = 4 * 1024 * 1024
START_DEADLINE_S = 10.0
CONTEXT = LambdaContext(
    function_name="RedisHealth",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:RedisHealth",
    memory_limit_in_mb=256,
    timeout_s=20,
)


@pytest.fixture(scope="module")
def password() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory, password: str) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    workdir = tmp_path_factory.mktemp("redis")
    with local_redis_server(
        workdir, password, maxmemory=str(MAXMEMORY), start_deadline_s=START_DEADLINE_S
    ) as port:
        yield port


@pytest.fixture
def client(redis_port: int, password: str) -> Iterator[redis.Redis]:
    connection = redis.Redis(host="127.0.0.1", port=redis_port, password=password, decode_responses=True)
    yield connection
    connection.close()


# ---------------------------------------------------------------------------- check_redis_health


def test_health_check_is_healthy_with_the_password(redis_port: int, password: str) -> None:
    status = check_redis_health("127.0.0.1", redis_port, password)
    assert status.status == "healthy"
    assert status.endpoint == f"127.0.0.1:{redis_port}"
    assert status.reason is None
    assert status.latency_ms is not None
    assert 0 < status.latency_ms < 1000


def test_health_check_with_a_wrong_password_is_degraded_and_does_not_raise(
    redis_port: int, password: str
) -> None:
    status = check_redis_health("127.0.0.1", redis_port, password[::-1])
    assert status.status == "degraded"
    assert status.reason is not None
    assert status.reason.startswith("AuthenticationError")
    assert password not in status.model_dump_json()
    assert password[::-1] not in status.model_dump_json()


def test_health_check_of_a_closed_port_is_degraded_within_its_timeout() -> None:
    started = time.monotonic()
    status = check_redis_health("127.0.0.1", free_port(), "whatever", timeout_s=0.5)
    assert status.status == "degraded"
    assert status.reason is not None
    assert "ConnectionError" in status.reason
    assert time.monotonic() - started < 2.0


# ---------------------------------------------------------------------------- the health function


def emf_lines(text: str) -> list[dict[str, Any]]:
    """Every EMF document Powertools printed to stdout."""
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_values(document: dict[str, Any]) -> dict[str, float]:
    directive = document["_aws"]["CloudWatchMetrics"][0]
    values = {}
    for metric in directive["Metrics"]:
        value = document[metric["Name"]]
        # EMF allows a value or an array of values; one reading is one value.
        if isinstance(value, list):
            assert len(value) == 1, (metric["Name"], value)
            value = value[0]
        values[metric["Name"]] = float(value)
    return values


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, aws_env: None, redis_port: int) -> Iterator[dict[str, Any]]:
    """moto EC2 (the instance) and Secrets Manager; its private IP:6379 leads to the loopback server."""
    for name, value in {
        "PROJECT_NAME": PROJECT,
        "ENVIRONMENT": ENVIRONMENT,
        "REDIS_PORT_DEFAULT": str(REDIS_PORT),
        "POWERTOOLS_SERVICE_NAME": "redis-migration",
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    routes = AddressMap()
    guard = NetworkGuard(routes)
    with mock_aws():
        ec2 = boto3.client("ec2")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        monkeypatch.setenv("INSTANCE_ID", instance["InstanceId"])
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        monitoring._locations.clear()
        monitoring._previous_counters.clear()
        guard.install()
        try:
            yield {"instance": instance, "routes": routes, "secrets": boto3.client("secretsmanager")}
        finally:
            guard.uninstall()
            parameters.clear_caches()  # type: ignore[no-untyped-call]


def load_handler() -> ModuleType:
    # The namespace is read when Metrics() is created: import after the environment is set.
    importlib.reload(monitoring)
    spec = importlib.util.spec_from_file_location("redis_health_app", REPO / "functions/redis_health/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def given_secret_and_route(aws: dict[str, Any], password: str, loopback_port: int) -> None:
    """The stack's password secret, and the instance's private address routed to a loopback port."""
    aws["secrets"].create_secret(
        Name=f"{PROJECT}-redis-password-{ENVIRONMENT}", SecretString=json.dumps({"password": password})
    )
    aws["routes"].add(aws["instance"]["PrivateIpAddress"], REDIS_PORT, ("127.0.0.1", loopback_port))


def run_handler(
    handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    capsys.readouterr()
    result = handler.lambda_handler({}, CONTEXT)
    documents = emf_lines(capsys.readouterr().out)
    assert len(documents) == 1
    return result, documents[0]


def test_every_metric_is_published_with_the_value_redis_reports(
    aws: dict[str, Any],
    client: redis.Redis,
    redis_port: int,
    password: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the secret, the instance's address mapped to the server, and known hits and misses
    given_secret_and_route(aws, password, redis_port)
    client.config_resetstat()
    client.set("health:hit", "1")
    for _ in range(3):
        client.get("health:hit")
    client.get("health:miss")
    handler = load_handler()

    # When the function runs
    result, document = run_handler(handler, capsys)
    info = client.info()

    # Then it is healthy and every metric carries Redis's value
    assert result["healthy"] is True, result["reason"]
    values = metric_values(document)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert sorted(directive["Dimensions"][0]) == ["environment", "service"]
    assert document["environment"] == ENVIRONMENT
    assert values["Health"] == 1
    assert values["MaxmemoryBytes"] == MAXMEMORY
    assert abs(values["UsedMemoryBytes"] - info["used_memory"]) < 256 * 1024
    assert values["MemoryUsedPercent"] == pytest.approx(100 * values["UsedMemoryBytes"] / MAXMEMORY, abs=0.01)
    # The test's own connection plus the function's (closed by the time INFO is read again here).
    assert values["ConnectedClients"] == info["connected_clients"] + 1
    assert 0 <= values["OpsPerSecond"] <= info["instantaneous_ops_per_sec"] + 1000
    assert values["EvictedKeysTotal"] == info["evicted_keys"]
    assert values["RejectedConnectionsTotal"] == info["rejected_connections"]
    assert values["KeyspaceHitRatioPercent"] == pytest.approx(75.0)  # 3 hits, 1 miss
    assert values["AofLastWriteOk"] == 1
    assert values["RdbLastSaveOk"] == 1
    assert values["RdbLastSaveAgeSeconds"] == pytest.approx(time.time() - info["rdb_last_save_time"], abs=2)
    assert info["rdb_changes_since_last_save"] > 0
    assert values["RdbUnsavedAgeSeconds"] == values["RdbLastSaveAgeSeconds"]
    assert values["UptimeSeconds"] == pytest.approx(info["uptime_in_seconds"], abs=2)
    assert values["HealthCheckLatencyMs"] > 0
    # A first sample has no previous one: the per-period differences are left out, not zero.
    assert "EvictedKeys" not in values
    assert "RejectedConnections" not in values
    assert set(values) <= set(monitoring.HEALTH_METRICS)
    assert password not in json.dumps(result)


def test_evictions_between_two_runs_are_published_as_their_difference(
    aws: dict[str, Any],
    client: redis.Redis,
    redis_port: int,
    password: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given one reading taken
    given_secret_and_route(aws, password, redis_port)
    handler = load_handler()
    _, first = run_handler(handler, capsys)
    before = client.info("stats")["evicted_keys"]

    # When far more than maxmemory is written (allkeys-lru evicts)
    value = "x" * 10_000
    pipe = client.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"evict:{i}", value)
    pipe.execute()
    evicted = client.info("stats")["evicted_keys"] - before
    assert evicted > 0

    # Then the next reading publishes exactly those evictions
    _, document = run_handler(handler, capsys)
    values = metric_values(document)
    # The reading's own connection can push Redis over maxmemory once more, so the published
    # difference is at least what the test saw and exactly the difference of the two totals.
    assert values["EvictedKeys"] >= evicted
    assert values["EvictedKeys"] == values["EvictedKeysTotal"] - metric_values(first)["EvictedKeysTotal"]
    assert values["RejectedConnections"] == 0
    assert values["MemoryUsedPercent"] > 50
    client.flushall()


def test_an_unreachable_redis_publishes_health_0_with_a_reason(
    aws: dict[str, Any], password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    given_secret_and_route(aws, password, free_port())
    handler = load_handler()

    result, document = run_handler(handler, capsys)

    assert result["healthy"] is False
    assert "ConnectionError" in result["reason"]
    assert metric_values(document) == {"Health": 0.0}


def test_a_wrong_password_publishes_health_0_and_never_shows_a_password(
    aws: dict[str, Any], redis_port: int, password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = password[::-1]
    given_secret_and_route(aws, wrong, redis_port)
    handler = load_handler()

    capsys.readouterr()
    result = handler.lambda_handler({}, CONTEXT)
    captured = capsys.readouterr()

    assert result["healthy"] is False
    assert result["reason"].startswith("AuthenticationError")
    assert metric_values(emf_lines(captured.out)[0]) == {"Health": 0.0}
    for text in (captured.out, captured.err, json.dumps(result)):
        assert password not in text
        assert wrong not in text


def test_a_missing_secret_publishes_health_0(
    aws: dict[str, Any], redis_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    aws["routes"].add(aws["instance"]["PrivateIpAddress"], REDIS_PORT, ("127.0.0.1", redis_port))
    handler = load_handler()

    result, document = run_handler(handler, capsys)

    assert result["healthy"] is False
    assert f"{PROJECT}-redis-password-{ENVIRONMENT}" in result["reason"]
    assert metric_values(document) == {"Health": 0.0}


# ---------------------------------------------------------------------------- alarms see what is emitted


def test_the_alarms_find_the_emitted_datapoints_and_breach_on_an_unhealthy_reading(
    aws: dict[str, Any], password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the template's alarms created in moto from their own properties
    template = load_template(TEMPLATE_PATH)
    params = {
        "MetricsNamespace": NAMESPACE,
        "Environment": ENVIRONMENT,
        "ProjectName": PROJECT,
        "HealthCheckRateMinutes": "1",
        "MemoryAlarmThresholdPercent": "80",
        "EvictionsAlarmThreshold": "1",
        "LastSaveMaxAgeSeconds": "900",
    }
    # (the same resolver the local engine deploys with; the other parameters name any account)
    resolver = TemplateResolver(
        template,
        TEMPLATE_PATH.parent,
        {
            **params,
            "MonitorSelfHostedRedis": "true",
            "InstanceId": "i-0123456789abcdef0",
            "ElastiCacheEndpoint": "cache.example",
            "VpcId": "vpc-0123456789abcdef0",
            "VpcSubnetIds": "subnet-0123456789abcdef0",
            "VpcSecurityGroupIds": "sg-0123456789abcdef0",
        },
        stack_name="health-test",
        region="us-east-1",
        account_id="123456789012",
    )
    cloudwatch = boto3.client("cloudwatch")
    alarms = {
        logical_id: resolver.resolve(resource["Properties"])
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Namespace") == {"Ref": "MetricsNamespace"}
    }
    for properties in alarms.values():
        # CloudFormation turns Number parameters into numbers; the API wants them as such.
        arguments = {key: value for key, value in properties.items() if key != "AlarmDescription"}
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in arguments:
                arguments[key] = int(arguments[key])
        arguments["Threshold"] = float(arguments["Threshold"])
        cloudwatch.put_metric_alarm(**arguments)

    # And an unhealthy reading (no route to Redis), its EMF document sent as CloudWatch would ingest it
    given_secret_and_route(aws, password, free_port())
    _, document = run_handler(load_handler(), capsys)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    dimensions: list[Any] = [{"Name": name, "Value": document[name]} for name in directive["Dimensions"][0]]
    cloudwatch.put_metric_data(
        Namespace=directive["Namespace"],
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": value}
            for name, value in metric_values(document).items()
        ],
    )

    # Then the unhealthy alarm's exact metric (namespace, name, dimensions) holds the reading
    unhealthy = alarms["RedisUnhealthyAlarm"]
    stats = cloudwatch.get_metric_statistics(
        Namespace=unhealthy["Namespace"],
        MetricName=unhealthy["MetricName"],
        Dimensions=unhealthy["Dimensions"],
        StartTime=datetime.now(UTC) - timedelta(minutes=10),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=unhealthy["Period"],
        Statistics=["Minimum"],
    )
    assert [point["Minimum"] for point in stats["Datapoints"]] == [0.0]
    # And the reading breaches the alarm's condition (moto stores alarms but does not evaluate them)
    assert unhealthy["ComparisonOperator"] == "LessThanThreshold"
    assert stats["Datapoints"][0]["Minimum"] < unhealthy["Threshold"]
    described = {alarm["AlarmName"]: alarm for alarm in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert described[unhealthy["AlarmName"]]["TreatMissingData"] == "breaching"
