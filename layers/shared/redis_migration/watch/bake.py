"""The bake: after the cutover, watch the switched functions and both Redis, and name a regression.

The guide's "test all Lambda functions with the new endpoint", made a measurement:

- **RecordBaseline**, just before the cutover (before any write freeze), reads each function of the
  plan's ``Errors`` and ``Throttles`` (``AWS/Lambda``, per ``FunctionName``) summed over the
  ``bakeMinutes`` before it, and the ElastiCache nodes' ``CurrConnections`` (``AWS/ElastiCache``,
  per ``CacheClusterId``/``CacheNodeId`` of the replication group behind the endpoint) averaged over
  the same window. The per-function numbers go to the records bucket (``bake/baseline.json``,
  pinned by its SHA-256); the execution carries the totals.
- **CheckBake**, once a minute in an ASL loop after VerifyCutover, reads the same series over the
  bake window, ``bakeMinutes`` long from the first check (whole minutes: CloudWatch rounds a start
  time down to the minute) or, after a write freeze, from the first whole minute after the
  unfreeze: while frozen (reserved concurrency 0) every call to a writer is a throttle, and the
  events held back are released at the unfreeze, so the minutes up to it measure the freeze, not
  the new Redis. The freeze's own throttles (from its first minute to the window) are reported
  apart (``freezeThrottles``), never judged. Each switched function is compared with its own baseline
  (:class:`~redis_migration.models.BakeThresholds`). Errors and throttles only grow during the
  window, so a function over its allowance early is over it at the end too: the check says
  ``regressed`` at once. Otherwise the bake ends ``passed`` two minutes after the window (the
  last minutes' datapoints arrive after them). The ElastiCache nodes' ``CurrConnections`` are
  reported, not judged: it counts ElastiCache's own monitoring connections and the idle sockets of
  old execution environments, which it never closes. Whether a switched function still uses
  ElastiCache is judged after the last wave's bake by ``CLIENT LIST`` on every node
  (CheckElastiCacheClientsAfter, :mod:`redis_migration.clients.writers`). The self-hosted Redis
  is read by the workflow with the RedisHealth function (its answer is CheckBake's
  ``selfHosted``): its connected clients are reported, and it regresses when it does not answer
  in consecutive checks. The instance Redis
  shares is read by the ReadHostHealth function (CheckBake's ``host``) and compared with the
  preflight's reading (``hostBefore``): a co-tenant down or restarted, memory pressure, swapping or
  load grown past their margins regress the bake like a function's errors
  (:mod:`redis_migration.watch.host_health`); an instance unread in ``hostUnreadableChecks``
  consecutive checks too, since the bake would be blind to it.

The bake's clock is the workflow's: each check adds the wait it asked for (``nextCheckSeconds``,
which the ASL's Wait state waits) to ``waitedSeconds``, and the bake is over when the waits add
up to the window plus the settling time. On AWS a Wait lasts at least what it asks, so the window
has passed; the local engine, whose Waits take no time, runs a bake in as many checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from redis_migration.aws import AwsClients
from redis_migration.errors import BakeRecordMismatch
from redis_migration.models import (
    MAX_BAKE_MINUTES,
    BakeThresholds,
    HostState,
    MachineFacts,
    Model,
    PlanDocument,
    RecordLocation,
)
from redis_migration.records import get_record, plan_key, put_record
from redis_migration.watch.host_health import (
    HostHealthReading,
    host_findings,
    load_per_cpu,
    memory_pressure,
    swap_rate,
)
from redis_migration.watch.metric_data import MetricSeries, SeriesValues, read_metrics

LAMBDA_NAMESPACE = "AWS/Lambda"
ELASTICACHE_NAMESPACE = "AWS/ElastiCache"
CHECK_INTERVAL_SECONDS = 60
# AWS publishes these metrics per minute and promises no delivery time; the final verdict waits
# this long after the window so that its last minutes are in.
SETTLE_SECONDS = 120
# Regressions named in the payload (all of them are in the check's record).
NAMED_REGRESSIONS = 10
SUMMARY_CHARACTERS = 900

BakeStatus = Literal["baking", "passed", "regressed"]
RegressionCode = Literal[
    "FunctionErrors",
    "FunctionThrottles",
    "ElastiCacheStillConnected",
    "SelfHostedRedisUnhealthy",
    "CoTenantDown",
    "CoTenantRestarted",
    "MemoryPressure",
    "SwapActivity",
    "HostLoad",
    "HostUnwatched",
]


def floor_minute(moment: datetime) -> datetime:
    """``moment`` (UTC) without seconds: where CloudWatch starts a one-minute period."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def first_minute_after(moment: datetime) -> datetime:
    """The start of the first whole minute after ``moment`` (the minute ``moment`` falls in has part
    of what came before it, so it is never the first)."""
    return floor_minute(moment) + timedelta(minutes=1)


def window_start_for(started_at: datetime, unfrozen_at: datetime | None) -> datetime:
    """Where the bake's window starts: the minute of its first check, or after a freeze the first
    whole minute after the unfreeze (whichever is later)."""
    start = floor_minute(started_at)
    if unfrozen_at is not None:
        start = max(start, first_minute_after(unfrozen_at))
    return start


def baseline_key(record: RecordLocation) -> str:
    return f"{record.prefix}bake/baseline.json"


def check_key(record: RecordLocation, batches_switched: int) -> str:
    return f"{record.prefix}bake/check-{batches_switched:04d}.json"


# ---------------------------------------------------------------------------------------------
# Models


class ElastiCacheNode(Model):
    """One node of the replication group: the dimensions of its ``AWS/ElastiCache`` metrics."""

    cache_cluster_id: str
    cache_node_id: str


class FunctionBaseline(Model):
    function_name: str
    batch: int  # the plan batch that switches it (waves are ranges of batches)
    errors: int
    throttles: int


class NodeBaseline(Model):
    node: ElastiCacheNode
    # Average CurrConnections over the window; None: ElastiCache published nothing for the node.
    connections: float | None


class BaselineDocument(Model):
    """``bake/baseline.json``: every function's and node's numbers before the cutover."""

    plan_sha256: str
    window_start: datetime
    window_end: datetime
    minutes: int
    replication_group_id: str | None
    functions: list[FunctionBaseline]
    nodes: list[NodeBaseline]


class BaselineInput(Model):
    """RecordBaseline's input: the run's plan and its bake settings (from the request)."""

    record: RecordLocation
    plan_sha256: str
    bake_minutes: Annotated[int, Field(ge=1, le=MAX_BAKE_MINUTES)]
    thresholds: BakeThresholds = BakeThresholds()
    elasticache_endpoint: str


class BakeBaseline(Model):
    """RecordBaseline's output, CheckBake's ``baseline``: small whatever the number of functions."""

    key: str
    sha256: str
    window_start: datetime
    window_end: datetime
    minutes: int
    thresholds: BakeThresholds
    function_count: int
    errors: int
    throttles: int
    functions_with_errors: int
    replication_group_id: str | None
    node_count: int
    # Sum over the nodes of their average CurrConnections; None when no node published any.
    elasticache_connections: float | None
    metric_requests: int
    notes: list[str] = []


class SelfHostedReading(BaseModel):
    """The RedisHealth function's answer, passed through by the workflow (other fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    healthy: bool
    reason: str | None = None
    metrics: dict[str, float] = {}


class BakeRegression(Model):
    """One reason the bake regressed: what, on what, the number seen and the number allowed."""

    code: RegressionCode
    subject: str
    observed: float
    allowed: float
    baseline: float | None = None
    detail: str | None = None


class ElastiCacheReading(Model):
    nodes: int
    # The latest CurrConnections of each node, summed, and the highest of them; None: no data.
    connections: float | None = None
    max_per_node: float | None = None
    baseline: float | None = None
    judged: bool = False  # only the final check of the final wave judges ElastiCache


class SelfHostedSummary(Model):
    read: bool = False
    healthy: bool | None = None
    reason: str | None = None
    connected_clients: int | None = None
    min_clients: int | None = None
    max_clients: int | None = None
    unhealthy_streak: int = 0


class HostSummary(Model):
    """The instance Redis shares, as the bake last read it (see watch/host_health.py)."""

    read: bool = False  # read at least once in this bake
    ok: bool | None = None  # the last reading
    reason: str | None = None
    unreadable_streak: int = 0
    co_tenants: int = 0  # watched: active at the preflight
    co_tenants_active: int | None = None
    memory_pressure: float | None = None  # PSI memory some avg60, percent
    swap_pages_per_second: float | None = None
    load_per_cpu: float | None = None
    # The restart marks of the services the run restarts itself (hostServices), from their first
    # reading in this bake; every other co-tenant is compared with the preflight.
    marks: dict[str, str] = {}
    # The last reading's figures: the next check's swap rate is measured from them.
    machine: MachineFacts | None = None


class BakeCheck(Model):
    """CheckBake's output; handed back to the next check as its ``progress``."""

    status: BakeStatus
    done: bool
    regressed: bool
    summary: str
    baseline_sha256: str
    started_at: datetime
    window_start: datetime
    window_end: datetime
    batches_switched: int
    final_wave: bool
    checks: int
    waited_seconds: int
    next_check_seconds: int
    functions_watched: int
    errors: int
    throttles: int
    baseline_errors: int
    baseline_throttles: int
    # A freeze's own throttles, from its first minute to the window's start (the writers were at
    # reserved concurrency 0): reported, never judged. None: no freeze, or not read yet (the
    # conclusive check reads them).
    freeze_throttles: int | None = None
    elasticache: ElastiCacheReading
    self_hosted: SelfHostedSummary
    regressions: list[BakeRegression]
    host: HostSummary = HostSummary()
    regression_count: int
    metric_requests: int
    result_key: str | None = None
    result_sha256: str | None = None


class BakeCheckInput(Model):
    """CheckBake's input. ``progress``: the previous check's output (None for the first);
    ``batchesSwitched``: the plan batches switched so far (the wave's ``endBatch``; None: all);
    ``selfHosted``: the RedisHealth function's answer read just before (None: not read);
    ``host``: the ReadHostHealth function's reading of the instance (None: not read), compared
    with ``hostBefore`` (the preflight's inspect); ``restartedByRun``: the services the run
    restarts on purpose (``hostServices``)."""

    record: RecordLocation
    baseline: BakeBaseline
    progress: BakeCheck | None = None
    batches_switched: Annotated[int | None, Field(ge=1)] = None
    final_wave: bool = True
    self_hosted: SelfHostedReading | None = None
    host: HostHealthReading | None = None
    host_before: HostState | None = None
    restarted_by_run: list[str] = []
    # Consistent mode: when the writers were frozen and unfrozen (the workflow's clock). The window
    # starts at the first whole minute after the unfreeze; the freeze's throttles are reported apart.
    frozen_at: datetime | None = None
    unfrozen_at: datetime | None = None


class BakeCheckRecord(Model):
    """``bake/check-<batches>.json``: the conclusive check with every function's numbers."""

    check: BakeCheck
    functions: list[dict[str, Any]]
    regressions: list[BakeRegression]


# ---------------------------------------------------------------------------------------------
# Series


def lambda_series(function: str, metric: str, period: int) -> MetricSeries:
    return MetricSeries(LAMBDA_NAMESPACE, metric, (("FunctionName", function),), "Sum", period)


def node_series(node: ElastiCacheNode, stat: str, period: int) -> MetricSeries:
    dimensions = (("CacheClusterId", node.cache_cluster_id), ("CacheNodeId", node.cache_node_id))
    return MetricSeries(ELASTICACHE_NAMESPACE, "CurrConnections", dimensions, stat, period)


def _count(values: SeriesValues) -> int:
    return round(values.total)


# ---------------------------------------------------------------------------------------------
# The replication group behind the endpoint


def _host(endpoint: str) -> str:
    return endpoint.strip().lower().rsplit(":", 1)[0] if ":" in endpoint else endpoint.strip().lower()


def _group_addresses(group: Any) -> set[str]:
    addresses = {str((group.get("ConfigurationEndpoint") or {}).get("Address", "")).lower()}
    for node_group in group.get("NodeGroups") or []:
        for key in ("PrimaryEndpoint", "ReaderEndpoint"):
            addresses.add(str((node_group.get(key) or {}).get("Address", "")).lower())
        for member in node_group.get("NodeGroupMembers") or []:
            addresses.add(str((member.get("ReadEndpoint") or {}).get("Address", "")).lower())
    addresses.discard("")
    return addresses


def _group_nodes(group: Any) -> list[ElastiCacheNode]:
    nodes = [
        ElastiCacheNode(
            cache_cluster_id=member["CacheClusterId"], cache_node_id=member.get("CacheNodeId", "0001")
        )
        for node_group in group.get("NodeGroups") or []
        for member in node_group.get("NodeGroupMembers") or []
        if member.get("CacheClusterId")
    ]
    if not nodes:
        # Cluster mode enabled lists no members per node group: one node per member cluster.
        nodes = [
            ElastiCacheNode(cache_cluster_id=cluster, cache_node_id="0001")
            for cluster in group.get("MemberClusters") or []
        ]
    return sorted(set(nodes), key=lambda node: (node.cache_cluster_id, node.cache_node_id))


def _id_in_host(host: str) -> set[str]:
    """Replication group ids an ElastiCache host name can carry (``master.<id>.``, ``<id>.``,
    ``<id>-001.``): ElastiCache names endpoints after the group."""
    labels = host.split(".")
    first = labels[1] if labels[0] in {"master", "replica", "clustercfg"} and len(labels) > 1 else labels[0]
    candidates = {first}
    stem, _, suffix = first.rpartition("-")
    if stem and suffix.isdigit() and len(suffix) == 3:
        candidates.add(stem)
    return candidates


def find_elasticache_nodes(
    endpoint: str, aws: AwsClients
) -> tuple[str | None, list[ElastiCacheNode], list[str]]:
    """The replication group (or cache cluster) behind ``endpoint``, its nodes, and notes.

    Matched by an endpoint the group reports, else by the group id in the host name (what
    ElastiCache names its endpoints after), else a standalone cluster by its nodes' endpoints.
    Nothing found is a note, not a failure: the functions are still watched.
    """
    host = _host(endpoint)
    paginator = aws.elasticache.get_paginator("describe_replication_groups")
    groups = [group for page in paginator.paginate() for group in page.get("ReplicationGroups", [])]
    matched = [group for group in groups if host in _group_addresses(group)]
    notes: list[str] = []
    if not matched:
        ids = _id_in_host(host)
        matched = [group for group in groups if group.get("ReplicationGroupId") in ids]
        if matched:
            notes.append(
                f"ElastiCache: {host} matched replication group {matched[0]['ReplicationGroupId']} "
                "by the id in its name, not by an endpoint the group reports"
            )
    if matched:
        group = matched[0]
        return str(group["ReplicationGroupId"]), _group_nodes(group), notes
    clusters = aws.elasticache.get_paginator("describe_cache_clusters")
    for page in clusters.paginate(ShowCacheNodeInfo=True):
        for cluster in page.get("CacheClusters", []):
            addresses = {
                str((node.get("Endpoint") or {}).get("Address", "")).lower()
                for node in cluster.get("CacheNodes") or []
            }
            addresses.add(str((cluster.get("ConfigurationEndpoint") or {}).get("Address", "")).lower())
            if host in addresses:
                nodes = [
                    ElastiCacheNode(
                        cache_cluster_id=cluster["CacheClusterId"], cache_node_id=node["CacheNodeId"]
                    )
                    for node in cluster.get("CacheNodes") or []
                ]
                return None, nodes, notes
    notes.append(
        f"ElastiCache: no replication group or cluster found behind {host}; its connections are not watched"
    )
    return None, [], notes


# ---------------------------------------------------------------------------------------------
# RecordBaseline


def plan_functions_by_batch(plan: PlanDocument) -> list[tuple[str, int]]:
    """(function, batch index) in plan order: the batches hold the plan's functions in order."""
    by_batch: list[tuple[str, int]] = []
    names = iter(function.function_name for function in plan.functions)
    for batch in sorted(plan.batches, key=lambda item: item.index):
        by_batch.extend((next(names), batch.index) for _ in range(batch.count))
    return by_batch


def record_baseline(given: BaselineInput, aws: AwsClients, *, now: datetime | None = None) -> BakeBaseline:
    """Read the window before the cutover; write ``bake/baseline.json``; answer its summary."""
    now = now or datetime.now(UTC)
    window_end = floor_minute(now)
    window_start = window_end - timedelta(minutes=given.bake_minutes)
    period = given.bake_minutes * 60
    plan = PlanDocument.model_validate(
        get_record(given.record, plan_key(given.record), given.plan_sha256, aws)
    )
    functions = plan_functions_by_batch(plan)
    group_id, nodes, notes = find_elasticache_nodes(given.elasticache_endpoint, aws)
    series = [
        lambda_series(name, metric, period) for name, _ in functions for metric in ("Errors", "Throttles")
    ]
    series += [node_series(node, "Average", period) for node in nodes]
    reading = read_metrics(aws.cloudwatch, series, window_start, window_end)
    values = reading.values
    baselines = [
        FunctionBaseline(
            function_name=name, batch=batch, errors=_count(values[2 * i]), throttles=_count(values[2 * i + 1])
        )
        for i, (name, batch) in enumerate(functions)
    ]
    node_values = values[2 * len(functions) :]
    node_baselines = [
        NodeBaseline(
            node=node, connections=(round(value.total / len(value.points), 3) if value.points else None)
        )
        for node, value in zip(nodes, node_values, strict=True)
    ]
    document = BaselineDocument(
        plan_sha256=given.plan_sha256,
        window_start=window_start,
        window_end=window_end,
        minutes=given.bake_minutes,
        replication_group_id=group_id,
        functions=baselines,
        nodes=node_baselines,
    )
    key = baseline_key(given.record)
    digest = put_record(given.record, key, document.to_json_dict(), aws)
    known = [node.connections for node in node_baselines if node.connections is not None]
    if nodes and not known:
        notes.append(f"ElastiCache published no CurrConnections for {len(nodes)} node(s) before the cutover")
    return BakeBaseline(
        key=key,
        sha256=digest,
        window_start=window_start,
        window_end=window_end,
        minutes=given.bake_minutes,
        thresholds=given.thresholds,
        function_count=len(baselines),
        errors=sum(item.errors for item in baselines),
        throttles=sum(item.throttles for item in baselines),
        functions_with_errors=sum(1 for item in baselines if item.errors),
        replication_group_id=group_id,
        node_count=len(nodes),
        elasticache_connections=round(sum(known), 3) if known else None,
        metric_requests=reading.requests,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# CheckBake


def _freeze_throttles(
    aws: AwsClients, functions: list[str], start: datetime, end: datetime
) -> tuple[int, dict[str, int], int]:
    """Each function's Throttles from the freeze's first minute to the bake's window: the freeze's
    own (reserved concurrency 0), reported apart. Answers the total, per function, and requests."""
    if not functions:
        return 0, {}, 0
    period = max(60, int((end - start).total_seconds()))
    reading = read_metrics(
        aws.cloudwatch, [lambda_series(name, "Throttles", period) for name in functions], start, end
    )
    counts = {name: _count(value) for name, value in zip(functions, reading.values, strict=True)}
    return sum(counts.values()), counts, reading.requests


def allowance(before: int, increase_percent: int, margin: int) -> int:
    """The most a function may have during the bake: its own count before, grown by the
    percentage, plus the margin (rounded down: 3 before at +50% allows 4 + margin)."""
    return math.floor(before * (100 + increase_percent) / 100) + margin


def _self_hosted(reading: SelfHostedReading | None, previous: SelfHostedSummary | None) -> SelfHostedSummary:
    previous = previous or SelfHostedSummary()
    if reading is None:
        return previous
    clients_value = reading.metrics.get("ConnectedClients")
    clients = None if clients_value is None else round(clients_value)
    known = [value for value in (previous.min_clients, clients) if value is not None]
    highest = [value for value in (previous.max_clients, clients) if value is not None]
    return SelfHostedSummary(
        read=True,
        healthy=reading.healthy,
        reason=(reading.reason or "")[:200] or None,
        connected_clients=clients,
        min_clients=min(known) if known else None,
        max_clients=max(highest) if highest else None,
        unhealthy_streak=0 if reading.healthy else previous.unhealthy_streak + 1,
    )


def _instance(
    given: BakeCheckInput, previous: HostSummary | None, thresholds: BakeThresholds
) -> tuple[HostSummary, list[BakeRegression]]:
    """This check's view of the instance and its regressions (see watch/host_health.py)."""
    previous = previous or HostSummary()
    reading = given.host
    if reading is None:
        return previous, []
    if not reading.ok:
        streak = previous.unreadable_streak + 1
        summary = previous.model_copy(
            update={
                "ok": False,
                "reason": (reading.reason or reading.message or reading.error or "")[:200] or None,
                "unreadable_streak": streak,
            }
        )
        regressions = []
        if streak >= thresholds.host_unreadable_checks:
            regressions.append(
                BakeRegression(
                    code="HostUnwatched",
                    subject="instance",
                    observed=streak,
                    allowed=thresholds.host_unreadable_checks - 1,
                    detail=summary.reason,
                )
            )
        return summary, regressions
    before = given.host_before
    restarted = set(given.restarted_by_run)
    marks = dict(previous.marks)
    for unit in reading.co_tenants:
        if unit.unit in restarted and unit.unit not in marks and unit.active_state == "active":
            marks[unit.unit] = unit.mark
    watched = {
        unit.unit: marks.get(unit.unit, unit.mark) if unit.unit in restarted else unit.mark
        for unit in (before.co_tenants if before is not None else [])
        if unit.active_state == "active"
    }
    before_machine = before.machine if before is not None else None
    findings = host_findings(
        reading, before=before_machine, previous=previous.machine, marks=watched, thresholds=thresholds
    )
    summary = HostSummary(
        read=True,
        ok=True,
        unreadable_streak=0,
        co_tenants=len(watched),
        co_tenants_active=sum(
            1 for unit in reading.co_tenants if unit.unit in watched and unit.active_state == "active"
        ),
        memory_pressure=memory_pressure(reading.machine),
        swap_pages_per_second=_rounded(swap_rate(previous.machine or before_machine, reading.machine)),
        load_per_cpu=_rounded(load_per_cpu(reading.machine)),
        marks=marks,
        machine=reading.machine,
    )
    regressions = [BakeRegression(**finding.model_dump()) for finding in findings]
    return summary, regressions


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _summary(check: dict[str, Any], regressions: Sequence[BakeRegression]) -> str:
    head = (
        f"bake {check['status']} after {check['waited_seconds'] // 60} min ({check['checks']} checks): "
        f"{check['functions_watched']} functions, {check['errors']} errors and {check['throttles']} "
        f"throttles (before: {check['baseline_errors']} and {check['baseline_throttles']})"
    )
    host: HostSummary | None = check.get("host")
    if host is not None and host.read:
        head += (
            f"; instance: {host.co_tenants_active}/{host.co_tenants} co-tenants active, memory pressure "
            f"{_shown(host.memory_pressure, '%')}, load {_shown(host.load_per_cpu, '/CPU')}"
        )
    if check.get("freeze_throttles") is not None:
        head += (
            f"; the write freeze's own throttles, not judged: {check['freeze_throttles']} "
            f"(window from {check['window_start']:%H:%M} UTC, the first whole minute after the unfreeze)"
        )
    if regressions:
        named = "; ".join(
            f"{item.code} {item.subject}: {item.observed:g} > {item.allowed:g} allowed"
            + (f" ({item.baseline:g} before)" if item.baseline is not None else "")
            + (f" [{item.detail}]" if item.detail else "")
            for item in regressions[:5]
        )
        more = f" (+{len(regressions) - 5} more)" if len(regressions) > 5 else ""
        head += f"; regressed: {named}{more}"
    return head[:SUMMARY_CHARACTERS]


def _shown(value: float | None, unit: str) -> str:
    return "unknown" if value is None else f"{value:g}{unit}"


def check_bake(given: BakeCheckInput, aws: AwsClients, *, now: datetime | None = None) -> BakeCheck:
    """One check of the bake: ``baking`` (check again in ``nextCheckSeconds``), ``passed`` or
    ``regressed`` with every reason. A check of a finished bake answers it again unchanged."""
    now = now or datetime.now(UTC)
    baseline = given.baseline
    progress = given.progress
    if progress is not None and progress.baseline_sha256 != baseline.sha256:
        raise BakeRecordMismatch(
            f"progress belongs to the baseline {progress.baseline_sha256[:12]}..., "
            f"not to {baseline.sha256[:12]}... (a progress from another run)"
        )
    document = BaselineDocument.model_validate(get_record(given.record, baseline.key, baseline.sha256, aws))
    batches = 1 + max((item.batch for item in document.functions), default=-1)
    switched = min(given.batches_switched or batches, batches)
    # A progress of another wave (or none) starts this wave's bake.
    fresh = progress is None or progress.batches_switched != switched
    if progress is not None and not fresh and progress.done:
        return progress
    started_at = now if fresh or progress is None else progress.started_at
    waited = 0 if fresh or progress is None else progress.waited_seconds + progress.next_check_seconds
    checks = 1 if fresh or progress is None else progress.checks + 1
    window_start = window_start_for(started_at, given.unfrozen_at)
    window_end = window_start + timedelta(minutes=document.minutes)
    # The bake lasts until the window's end (which a freeze puts up to a minute after the first
    # check) plus the settling time, counted in the waits the workflow asked for.
    lead = max(0, math.ceil((window_start - started_at).total_seconds()))
    length = lead + document.minutes * 60 + SETTLE_SECONDS
    final = waited >= length

    watched = [item for item in document.functions if item.batch < switched]
    nodes = [item.node for item in document.nodes]
    series = [
        lambda_series(item.function_name, metric, document.minutes * 60)
        for item in watched
        for metric in ("Errors", "Throttles")
    ]
    series += [node_series(node, "Maximum", 60) for node in nodes]
    reading = read_metrics(aws.cloudwatch, series, window_start, window_end)
    thresholds = baseline.thresholds

    regressions: list[BakeRegression] = []
    per_function: list[dict[str, Any]] = []
    errors = throttles = 0
    for index, item in enumerate(watched):
        seen_errors = _count(reading.values[2 * index])
        seen_throttles = _count(reading.values[2 * index + 1])
        errors += seen_errors
        throttles += seen_throttles
        per_function.append(
            {
                "functionName": item.function_name,
                "batch": item.batch,
                "errors": seen_errors,
                "errorsBefore": item.errors,
                "throttles": seen_throttles,
                "throttlesBefore": item.throttles,
            }
        )
        comparisons: list[tuple[RegressionCode, int, int, int, int]] = [
            (
                "FunctionErrors",
                seen_errors,
                item.errors,
                thresholds.error_increase_percent,
                thresholds.error_margin,
            ),
            (
                "FunctionThrottles",
                seen_throttles,
                item.throttles,
                thresholds.throttle_increase_percent,
                thresholds.throttle_margin,
            ),
        ]
        for code, seen, before, percent, margin in comparisons:
            allowed = allowance(before, percent, margin)
            if seen > allowed:
                regressions.append(
                    BakeRegression(
                        code=code, subject=item.function_name, observed=seen, allowed=allowed, baseline=before
                    )
                )

    node_values = reading.values[2 * len(watched) :]
    latest = [value.latest for value in node_values]
    known = [value for value in latest if value is not None]
    # Reported, never judged here: CurrConnections counts ElastiCache's own monitoring and old
    # execution environments' idle sockets (see the module doc; CLIENT LIST judges after the bake).
    judged = False
    self_hosted = _self_hosted(given.self_hosted, None if fresh or progress is None else progress.self_hosted)
    if self_hosted.unhealthy_streak >= thresholds.self_hosted_unhealthy_checks:
        regressions.append(
            BakeRegression(
                code="SelfHostedRedisUnhealthy",
                subject="self-hosted Redis",
                observed=self_hosted.unhealthy_streak,
                allowed=thresholds.self_hosted_unhealthy_checks - 1,
            )
        )
    host, host_regressions = _instance(
        given, None if fresh or progress is None else progress.host, thresholds
    )
    regressions += host_regressions

    status: BakeStatus = "regressed" if regressions else ("passed" if final else "baking")
    done = status != "baking"
    remaining = length - waited
    freeze_throttles, freeze_requests = None, 0
    if done and given.frozen_at is not None and floor_minute(given.frozen_at) < window_start:
        freeze_throttles, per_function_freeze, freeze_requests = _freeze_throttles(
            aws, [item.function_name for item in watched], floor_minute(given.frozen_at), window_start
        )
        for row in per_function:
            row["freezeThrottles"] = per_function_freeze.get(row["functionName"], 0)
    fields: dict[str, Any] = {
        "status": status,
        "done": done,
        "regressed": bool(regressions),
        "baseline_sha256": baseline.sha256,
        "started_at": started_at,
        "window_start": window_start,
        "window_end": window_end,
        "batches_switched": switched,
        "final_wave": given.final_wave,
        "checks": checks,
        "waited_seconds": waited,
        "next_check_seconds": 0 if done else max(1, min(CHECK_INTERVAL_SECONDS, remaining)),
        "functions_watched": len(watched),
        "errors": errors,
        "throttles": throttles,
        "baseline_errors": sum(item.errors for item in watched),
        "baseline_throttles": sum(item.throttles for item in watched),
        "freeze_throttles": freeze_throttles,
        "elasticache": ElastiCacheReading(
            nodes=len(nodes),
            connections=round(sum(known), 3) if known else None,
            max_per_node=max(known) if known else None,
            baseline=baseline.elasticache_connections,
            judged=judged,
        ),
        "self_hosted": self_hosted,
        "host": host,
        "regressions": regressions[:NAMED_REGRESSIONS],
        "regression_count": len(regressions),
        "metric_requests": reading.requests + freeze_requests,
    }
    fields["summary"] = _summary(fields, regressions)
    check = BakeCheck(**fields)
    if done:
        key = check_key(given.record, switched)
        record = BakeCheckRecord(check=check, functions=per_function, regressions=regressions)
        digest = put_record(given.record, key, record.to_json_dict(), aws)
        check = check.model_copy(update={"result_key": key, "result_sha256": digest})
    return check


__all__ = [
    "BakeBaseline",
    "BakeCheck",
    "BakeCheckInput",
    "BaselineInput",
    "check_bake",
    "find_elasticache_nodes",
    "record_baseline",
]
