"""The scheduled health function's logic: find Redis, read INFO, publish the metrics (EMF).

How it finds Redis without a ``REDIS_HOST`` of its own (the workflow discovers client functions by
that variable, and the local engine gives every function one identical environment): the
stack's ``INSTANCE_ID`` is described once for its private IP, cached across warm invocations,
and the password secret is read by its conventional name through Powertools parameters (cached
too). A warm run therefore makes no AWS call at all: one TCP connection, ``AUTH`` and ``INFO``.

The metric names below are a contract with the template's alarms and dashboard (a unit test
reads both and compares).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from redis_migration.aws import AwsClients
from redis_migration.models import ENVIRONMENT_DIMENSION, StackSettings
from redis_migration.watch.health import RedisHealthSample, describe_error, read_health_sample

SECRET_MAX_AGE_SECONDS = 300
# The private IP of a running instance does not change (a VPC keeps it across stop/start); the
# cache is still bounded so a replaced instance is found within minutes, and it is dropped at
# once when Redis cannot be reached.
LOCATION_MAX_AGE_SECONDS = 900
REDIS_TIMEOUT_S = 2.0

# name -> unit; the template's alarms and dashboard refer to these names.
HEALTH_METRICS: dict[str, MetricUnit] = {
    "Health": MetricUnit.Count,
    "HealthCheckLatencyMs": MetricUnit.Milliseconds,
    "UsedMemoryBytes": MetricUnit.Bytes,
    "MaxmemoryBytes": MetricUnit.Bytes,
    "MemoryUsedPercent": MetricUnit.Percent,
    "ConnectedClients": MetricUnit.Count,
    "OpsPerSecond": MetricUnit.CountPerSecond,
    "EvictedKeys": MetricUnit.Count,
    "EvictedKeysTotal": MetricUnit.Count,
    "RejectedConnections": MetricUnit.Count,
    "RejectedConnectionsTotal": MetricUnit.Count,
    "KeyspaceHitRatioPercent": MetricUnit.Percent,
    "AofLastWriteOk": MetricUnit.Count,
    "RdbLastSaveOk": MetricUnit.Count,
    "RdbLastSaveAgeSeconds": MetricUnit.Seconds,
    "RdbUnsavedAgeSeconds": MetricUnit.Seconds,
    "UptimeSeconds": MetricUnit.Seconds,
}

# Namespace from POWERTOOLS_METRICS_NAMESPACE (the MetricsNamespace stack parameter).
metrics = Metrics()


class HealthReport(BaseModel):
    """What the health function returns and logs (no secret, no password)."""

    model_config = ConfigDict(frozen=True)

    environment: str
    instance_id: str
    healthy: bool
    endpoint: str | None
    reason: str | None
    metrics: dict[str, float]


@dataclass
class _Location:
    host: str
    found_at: float


@dataclass(frozen=True)
class _Counters:
    run_id: str
    evicted_keys: int
    rejected_connections: int


_locations: dict[str, _Location] = {}
# The previous sample's counters, per endpoint: the eviction alarm needs evictions per period, and
# Redis only reports a total since its start. The function has reserved concurrency 1 (one warm
# container at a time), so consecutive samples are consecutive runs; after a cold start or a
# restart of Redis (a new run_id) the difference is unknown and left out, never guessed.
_previous_counters: dict[str, _Counters] = {}
_locations_lock = threading.Lock()


class RedisNotLocated(Exception):
    """The instance (or its private IP) could not be found."""


def locate_redis(instance_id: str, aws: AwsClients, now: float | None = None) -> str:
    """The private IP of ``instance_id``, cached for :data:`LOCATION_MAX_AGE_SECONDS`."""
    now = time.monotonic() if now is None else now
    with _locations_lock:
        cached = _locations.get(instance_id)
        if cached is not None and now - cached.found_at < LOCATION_MAX_AGE_SECONDS:
            return cached.host
    reservations = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    if not instances or not instances[0].get("PrivateIpAddress"):
        raise RedisNotLocated(f"instance {instance_id} has no private IP (not found or not running)")
    host = instances[0]["PrivateIpAddress"]
    with _locations_lock:
        _locations[instance_id] = _Location(host=host, found_at=now)
    return host


def forget_location(instance_id: str) -> None:
    """Drop the cached address, so the next run describes the instance again."""
    with _locations_lock:
        _locations.pop(instance_id, None)


def read_password_by_name(secret_name: str, *, force_fetch: bool = False) -> str:
    """The password from the secret named ``secret_name`` (cached by Powertools)."""
    secret = parameters.get_secret(secret_name, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=force_fetch)
    return str(json.loads(str(secret))["password"])


def counter_differences(sample: RedisHealthSample) -> tuple[int | None, int | None]:
    """(evicted keys, rejected connections) since the previous sample of the same Redis run."""
    evicted, rejected = sample.evicted_keys_total, sample.rejected_connections_total
    if sample.run_id is None or evicted is None or rejected is None:
        return None, None
    current = _Counters(sample.run_id, evicted, rejected)
    with _locations_lock:
        previous = _previous_counters.get(sample.endpoint)
        _previous_counters[sample.endpoint] = current
    if previous is None or previous.run_id != current.run_id:
        return None, None
    return (
        current.evicted_keys - previous.evicted_keys,
        current.rejected_connections - previous.rejected_connections,
    )


def metric_values(sample: RedisHealthSample) -> dict[str, float]:
    """The sample as metric name -> value; metrics not measurable now are left out (no fake zeros)."""
    evicted, rejected = counter_differences(sample)

    def flag(value: bool | None) -> float | None:
        return None if value is None else float(value)

    candidates: dict[str, float | int | None] = {
        "Health": 1.0 if sample.healthy else 0.0,
        "HealthCheckLatencyMs": sample.latency_ms,
        "UsedMemoryBytes": sample.used_memory_bytes,
        "MaxmemoryBytes": sample.maxmemory_bytes,
        "MemoryUsedPercent": sample.memory_used_percent,
        "ConnectedClients": sample.connected_clients,
        "OpsPerSecond": sample.ops_per_second,
        "EvictedKeys": evicted,
        "EvictedKeysTotal": sample.evicted_keys_total,
        "RejectedConnections": rejected,
        "RejectedConnectionsTotal": sample.rejected_connections_total,
        "KeyspaceHitRatioPercent": sample.keyspace_hit_ratio_percent,
        "AofLastWriteOk": flag(sample.aof_last_write_ok),
        "RdbLastSaveOk": flag(sample.rdb_last_save_ok),
        "RdbLastSaveAgeSeconds": sample.rdb_last_save_age_seconds,
        "RdbUnsavedAgeSeconds": sample.rdb_unsaved_age_seconds,
        "UptimeSeconds": sample.uptime_seconds,
    }
    return {name: float(value) for name, value in candidates.items() if value is not None}


def _sample(settings: StackSettings, aws: AwsClients) -> RedisHealthSample:
    try:
        host = locate_redis(settings.instance_id, aws)
    except (ClientError, BotoCoreError, RedisNotLocated) as error:
        return RedisHealthSample(
            endpoint=f"{settings.instance_id}:{settings.redis_port}",
            healthy=False,
            reason=f"cannot locate Redis: {describe_error(error)}",
        )
    secret_name = f"{settings.project_name}-redis-password-{settings.environment}"
    try:
        password = read_password_by_name(secret_name)
    except (GetParameterError, TransformParameterError, ValueError, KeyError) as error:
        # The message names the secret, never its value.
        return RedisHealthSample(
            endpoint=f"{host}:{settings.redis_port}",
            healthy=False,
            reason=f"cannot read the password secret {secret_name}: {type(error).__name__}",
        )
    sample = read_health_sample(host, settings.redis_port, password, REDIS_TIMEOUT_S)
    if not sample.healthy and sample.reason and sample.reason.startswith("AuthenticationError"):
        # A password rotated since it was cached: fetch it again, once.
        try:
            fresh = read_password_by_name(secret_name, force_fetch=True)
        except (GetParameterError, TransformParameterError, ValueError, KeyError):
            return sample
        if fresh != password:
            sample = read_health_sample(host, settings.redis_port, fresh, REDIS_TIMEOUT_S)
    if not sample.healthy and sample.reason and not sample.reason.startswith("AuthenticationError"):
        forget_location(settings.instance_id)
    return sample


def publish_redis_health(
    settings: StackSettings, aws: AwsClients, sink: Metrics | None = None
) -> HealthReport:
    """Read Redis's health and add every measurable metric to ``sink`` (flushed by the handler).

    Never raises for a Redis or AWS problem: an unreachable Redis, a missing secret or a wrong
    password all publish ``Health = 0`` and name the reason.
    """
    sink = metrics if sink is None else sink
    sample = _sample(settings, aws)
    values = metric_values(sample)
    sink.add_dimension(name=ENVIRONMENT_DIMENSION, value=settings.environment)
    for name, value in values.items():
        sink.add_metric(name=name, unit=HEALTH_METRICS[name], value=value)
    return HealthReport(
        environment=settings.environment,
        instance_id=settings.instance_id,
        healthy=sample.healthy,
        endpoint=sample.endpoint,
        reason=sample.reason,
        metrics=values,
    )
