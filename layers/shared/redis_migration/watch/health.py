"""Redis health: a quick check for the team's own functions and the metrics the health function publishes.

Pure redis-py, no AWS, and nothing here raises for a Redis problem: a health check that crashes
the worker it guards (the guide's health endpoint) would turn a slow Redis into an outage. Every
call has tight socket timeouts and no retries, so a dead Redis costs at most about twice
``timeout_s`` (connect, then one command).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict
from redis.backoff import NoBackoff
from redis.retry import Retry

MAX_REASON_CHARS = 200

HealthState = Literal["healthy", "degraded"]


class HealthStatus(BaseModel):
    """The answer of :func:`check_redis_health` (safe to return from a health endpoint)."""

    model_config = ConfigDict(frozen=True)

    status: HealthState
    endpoint: str
    reason: str | None = None
    latency_ms: float | None = None

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


class RedisHealthSample(BaseModel):
    """One reading of ``INFO``, reduced to the published metrics (``None``: not measurable now).

    Counters (evicted keys, rejected connections) are Redis's own totals since its start;
    ``run_id`` names that start, so the caller can turn two samples of the same server into a
    difference (see :mod:`redis_migration.watch.monitoring`).
    """

    model_config = ConfigDict(frozen=True)

    endpoint: str
    healthy: bool
    reason: str | None = None
    latency_ms: float | None = None
    used_memory_bytes: int | None = None
    maxmemory_bytes: int | None = None
    memory_used_percent: float | None = None
    connected_clients: int | None = None
    ops_per_second: int | None = None
    evicted_keys_total: int | None = None
    rejected_connections_total: int | None = None
    keyspace_hit_ratio_percent: float | None = None
    aof_enabled: bool | None = None
    aof_last_write_ok: bool | None = None
    rdb_last_save_ok: bool | None = None
    rdb_last_save_age_seconds: int | None = None
    rdb_changes_since_last_save: int | None = None
    uptime_seconds: int | None = None
    run_id: str | None = None

    @property
    def rdb_unsaved_age_seconds(self) -> int | None:
        """Seconds since the last RDB save while changes wait to be saved; 0 when all is saved.

        ``rdb_last_save_time`` only moves when a save happens, and ``save 300 1`` saves only after
        a change: an idle Redis has an ever older last save that is not a problem. This is the age
        that matters for the stale-save alarm.
        """
        if self.rdb_last_save_age_seconds is None or self.rdb_changes_since_last_save is None:
            return None
        return self.rdb_last_save_age_seconds if self.rdb_changes_since_last_save > 0 else 0


def _client(host: str, port: int, password: str, timeout_s: float) -> redis.Redis:
    # No retries: the caller wants a verdict within its budget, not a later success.
    return redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        protocol=2,
        driver_info=None,
    )


def describe_error(error: Exception) -> str:
    """A short, password-free description of a failure (redis-py never echoes the password)."""
    return f"{type(error).__name__}: {error}"[:MAX_REASON_CHARS]


def check_redis_health(host: str, port: int, password: str, timeout_s: float = 1.0) -> HealthStatus:
    """Authenticate and PING; ``healthy`` with the round-trip latency, or ``degraded`` with a reason.

    Never raises for anything Redis or the network does.
    """
    endpoint = f"{host}:{port}"
    client = _client(host, port, password, timeout_s)
    started = time.perf_counter()
    try:
        answered = client.ping()
    except (redis.RedisError, OSError) as error:
        return HealthStatus(status="degraded", endpoint=endpoint, reason=describe_error(error))
    finally:
        client.close()
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    if answered is not True:
        return HealthStatus(status="degraded", endpoint=endpoint, reason="PING did not get PONG")
    return HealthStatus(status="healthy", endpoint=endpoint, latency_ms=latency_ms)


def _int(section: Mapping[str, Any], key: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def sample_from_info(
    endpoint: str, info: Mapping[str, Any], latency_ms: float | None, now: float | None = None
) -> RedisHealthSample:
    """Reduce ``INFO`` (all default sections, as redis-py parses it) to the published metrics."""
    now = time.time() if now is None else now
    used = _int(info, "used_memory")
    maxmemory = _int(info, "maxmemory")
    hits, misses = _int(info, "keyspace_hits"), _int(info, "keyspace_misses")
    lookups = (hits or 0) + (misses or 0)
    last_save = _int(info, "rdb_last_save_time")
    aof_enabled = _int(info, "aof_enabled")
    loading = _int(info, "loading") == 1
    return RedisHealthSample(
        endpoint=endpoint,
        # A Redis still loading its dataset answers INFO but refuses every data command.
        healthy=not loading,
        reason="Redis is loading its dataset" if loading else None,
        latency_ms=latency_ms,
        used_memory_bytes=used,
        maxmemory_bytes=maxmemory,
        # No maxmemory (0) means no limit: a share of "unlimited" would be meaningless.
        memory_used_percent=round(100.0 * used / maxmemory, 3) if used is not None and maxmemory else None,
        connected_clients=_int(info, "connected_clients"),
        ops_per_second=_int(info, "instantaneous_ops_per_sec"),
        evicted_keys_total=_int(info, "evicted_keys"),
        rejected_connections_total=_int(info, "rejected_connections"),
        keyspace_hit_ratio_percent=round(100.0 * (hits or 0) / lookups, 3) if lookups else None,
        aof_enabled=None if aof_enabled is None else aof_enabled == 1,
        # With AOF off there is no AOF write to fail; the status then says nothing.
        aof_last_write_ok=(info.get("aof_last_write_status") == "ok") if aof_enabled == 1 else None,
        rdb_last_save_ok=(
            info.get("rdb_last_bgsave_status") == "ok" if "rdb_last_bgsave_status" in info else None
        ),
        rdb_last_save_age_seconds=max(0, int(now) - last_save) if last_save is not None else None,
        rdb_changes_since_last_save=_int(info, "rdb_changes_since_last_save"),
        uptime_seconds=_int(info, "uptime_in_seconds"),
        run_id=str(info["run_id"]) if "run_id" in info else None,
    )


def read_health_sample(host: str, port: int, password: str, timeout_s: float = 1.0) -> RedisHealthSample:
    """Authenticate, read ``INFO`` and reduce it; an unreachable or refusing Redis gives healthy=False.

    Never raises for anything Redis or the network does. ``AuthenticationError`` is reported in
    the reason by name so a wrong or rotated password is told apart from an unreachable server.
    """
    endpoint = f"{host}:{port}"
    client = _client(host, port, password, timeout_s)
    started = time.perf_counter()
    try:
        info = client.info()
    except (redis.RedisError, OSError) as error:
        return RedisHealthSample(endpoint=endpoint, healthy=False, reason=describe_error(error))
    finally:
        client.close()
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    return sample_from_info(endpoint, info, latency_ms)
