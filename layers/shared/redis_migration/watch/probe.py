"""Checks a self-hosted Redis answers, demands auth and is configured as installed.

Pure redis-py, no AWS: the probe step fetches the password from Secrets Manager and calls
:func:`probe_redis`. Every check runs even when an earlier one fails, so one run names every
problem. The server may be Valkey, which reports ``redis_version:7.2.4`` (its Redis
compatibility level) plus ``valkey_version``; the version check uses ``redis_version`` because
that is what clients depend on, and the report shows the product's own version.
"""

from __future__ import annotations

import math
import re
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from redis_migration.errors import ProbeFailed

PROBE_KEY_PREFIX = "redis-migration:probe:"
PROBE_KEY_TTL_S = 60
MAX_PINGS = 1000
MAX_DETAIL_CHARS = 200

_T = TypeVar("_T")

_SIZE = re.compile(r"^([0-9]+)\s*(b|k|kb|m|mb|g|gb)?$")
# Redis's own units (config.c memtoll): "k"/"m"/"g" are powers of 1000, "kb"/"mb"/"gb" of 1024.
_UNITS = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def memory_bytes(size: str | int) -> int:
    """Bytes of a Redis memory size such as ``512mb`` (Redis units: ``mb`` = MiB, ``m`` = 10^6)."""
    if isinstance(size, int):
        return size
    match = _SIZE.fullmatch(size.strip().lower())
    if match is None:
        raise ValueError(f"not a Redis memory size: {size!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"[0-9]+", version)[:3])


class ExpectedRedisConfig(BaseModel):
    """What the install configured; the probe reads each back from the server."""

    model_config = ConfigDict(frozen=True)

    maxmemory_bytes: int = Field(default=512 * 1024**2, ge=0)
    maxmemory_policy: str = "allkeys-lru"
    appendonly: bool = True
    min_version: str = "7.0"


class ProbeCheck(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    name: str
    ok: bool
    detail: str = ""


class ProbeReport(BaseModel):
    """Every check with its outcome, the server's identity and the PING latency."""

    # camelCase in the execution history, like every other step's output.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    checks: list[ProbeCheck] = Field(default_factory=list)
    server: str | None = None
    version: str | None = None
    redis_version: str | None = None
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    pings: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[ProbeCheck]:
        return [check for check in self.checks if not check.ok]

    def failure_message(self) -> str:
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failed)


class NoAuthRetry(Retry):
    """redis-py's retry of connection errors, minus authentication failures (redis-py's
    AuthenticationError is a ConnectionError, and retrying a wrong password only delays the
    verdict). Shared with redis_link's connections."""

    def call_with_retry(
        self,
        do: Callable[[], _T],
        fail: Callable[[Exception], Any] | Callable[[Exception, int], Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> _T:
        def transient(error: Exception) -> bool:
            if isinstance(error, redis.AuthenticationError):
                return False
            return is_retryable is None or is_retryable(error)

        return super().call_with_retry(do, fail, transient, with_failure_count)


def _client(host: str, port: int, password: str | None, timeout_s: float) -> redis.Redis:
    # Retries cover a transient connection error (a restart in progress, a dropped packet); an
    # auth or command error is not retried. Bounded: 3 retries, backoff capped at 1 s.
    return redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=NoAuthRetry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), retries=3),
        decode_responses=True,
        # RESP2 and no CLIENT SETINFO on connect: without a password the first command the
        # server sees is our PING, which must get NOAUTH (not a refused HELLO).
        protocol=2,
        driver_info=None,
    )


def _run_check(report: ProbeReport, name: str, check: Callable[[], str]) -> None:
    """Run one check; a returned string is the passing detail, an exception the failure."""
    try:
        detail = check()
    except _ExpectationNotMetError as failure:
        report.checks.append(ProbeCheck(name=name, ok=False, detail=str(failure)[:MAX_DETAIL_CHARS]))
    except redis.RedisError as error:
        detail = f"{type(error).__name__}: {error}"
        report.checks.append(ProbeCheck(name=name, ok=False, detail=detail[:MAX_DETAIL_CHARS]))
    else:
        report.checks.append(ProbeCheck(name=name, ok=True, detail=detail[:MAX_DETAIL_CHARS]))


class _ExpectationNotMetError(Exception):
    """A check's expectation was not met (internal to the probe)."""


def _expect(condition: bool, detail: str) -> None:
    if not condition:
        raise _ExpectationNotMetError(detail)


def run_probe_checks(
    host: str,
    port: int,
    password: str,
    expected: ExpectedRedisConfig,
    *,
    pings: int = 50,
    timeout_s: float = 2.0,
) -> ProbeReport:
    """Run every check and return the report; never raises for a failed check."""
    report = ProbeReport()
    pings = max(1, min(pings, MAX_PINGS))
    anonymous = _client(host, port, None, timeout_s)
    client = _client(host, port, password, timeout_s)
    info: dict[str, dict[str, Any]] = {}

    def auth_required() -> str:
        try:
            anonymous.ping()
        except redis.AuthenticationError as error:
            return f"unauthenticated PING refused ({error})"
        raise _ExpectationNotMetError("an unauthenticated client was answered: auth is not enforced")

    def ping() -> str:
        _expect(client.ping() is True, "PING did not get PONG")
        return "PONG"

    def set_get_del() -> str:
        key = PROBE_KEY_PREFIX + secrets.token_hex(8)
        value = secrets.token_hex(8)
        # The TTL removes the key even if DEL is never reached.
        _expect(client.set(key, value, ex=PROBE_KEY_TTL_S) is True, "SET was not acknowledged")
        _expect(client.get(key) == value, "GET did not return the value just SET")
        _expect(client.delete(key) == 1, "DEL did not remove the key")
        return "round trip ok"

    def read_info() -> None:
        for section in ("server", "persistence", "memory"):
            if section not in info:
                info[section] = client.info(section)

    def version() -> str:
        read_info()
        server = info["server"]
        report.redis_version = str(server.get("redis_version", ""))
        report.server = str(server.get("server_name", "valkey" if "valkey_version" in server else "redis"))
        report.version = str(server.get("valkey_version", report.redis_version))
        _expect(
            _version_tuple(report.redis_version) >= _version_tuple(expected.min_version),
            f"redis_version {report.redis_version} is older than {expected.min_version}",
        )
        return f"{report.server} {report.version} (redis_version {report.redis_version})"

    def appendonly() -> str:
        read_info()
        enabled = int(info["persistence"].get("aof_enabled", 0)) == 1
        _expect(
            enabled == expected.appendonly,
            f"aof_enabled is {int(enabled)}, expected {int(expected.appendonly)}",
        )
        return f"aof_enabled={int(enabled)}"

    def maxmemory() -> str:
        read_info()
        memory = info["memory"]
        actual_bytes = int(memory.get("maxmemory", -1))
        policy = str(memory.get("maxmemory_policy", ""))
        _expect(
            actual_bytes == expected.maxmemory_bytes and policy == expected.maxmemory_policy,
            f"maxmemory {actual_bytes} / {policy}, "
            f"expected {expected.maxmemory_bytes} / {expected.maxmemory_policy}",
        )
        return f"maxmemory {actual_bytes} bytes, policy {policy}"

    def persistence_status() -> str:
        read_info()
        persistence = info["persistence"]
        statuses = {
            key: str(persistence.get(key, "missing"))
            for key in ("rdb_last_bgsave_status", "aof_last_write_status", "aof_last_bgrewrite_status")
        }
        bad = {key: value for key, value in statuses.items() if value != "ok"}
        _expect(not bad, ", ".join(f"{key}={value}" for key, value in bad.items()))
        return "last bgsave, AOF write and rewrite ok"

    def latency() -> str:
        samples = []
        for _ in range(pings):
            started = time.perf_counter()
            client.ping()
            samples.append((time.perf_counter() - started) * 1000)
        report.pings = len(samples)
        report.latency_ms_p50 = round(statistics.median(samples), 3)
        report.latency_ms_p99 = round(_percentile(samples, 99), 3)
        return f"p50 {report.latency_ms_p50} ms, p99 {report.latency_ms_p99} ms over {len(samples)} PINGs"

    try:
        for name, check in (
            ("auth_required", auth_required),
            ("ping", ping),
            ("set_get_del", set_get_del),
            ("version", version),
            ("appendonly", appendonly),
            ("maxmemory", maxmemory),
            ("persistence_status", persistence_status),
            ("latency", latency),
        ):
            _run_check(report, name, check)
    finally:
        anonymous.close()
        client.close()
    return report


def _percentile(samples: list[float], percent: float) -> float:
    """Nearest-rank percentile (exact for the small sample counts the probe takes)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def probe_redis(
    host: str,
    port: int,
    password: str,
    expected: ExpectedRedisConfig,
    *,
    pings: int = 50,
    timeout_s: float = 2.0,
) -> ProbeReport:
    """Run every check; return the report, or raise :class:`ProbeFailed` naming each failed check.

    The raised error carries the full report as its ``report`` attribute (see :func:`report_of`).
    """
    report = run_probe_checks(host, port, password, expected, pings=pings, timeout_s=timeout_s)
    if not report.ok:
        raise ProbeFailed(report.failure_message(), report=report)
    return report


def report_of(error: ProbeFailed) -> ProbeReport | None:
    """The report a :class:`ProbeFailed` raised by :func:`probe_redis` carries."""
    return error.report if isinstance(error.report, ProbeReport) else None
