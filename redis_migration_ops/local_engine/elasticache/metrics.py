"""ElastiCache's ``CurrConnections``: the connections of each node, published every minute.

AWS ("Metrics for Valkey and Redis OSS",
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html): ``CurrConnections``
is "the number of client connections, excluding connections from read replicas", derived from
``connected_clients`` of ``INFO``, in namespace ``AWS/ElastiCache`` with the dimensions
``CacheClusterId`` and ``CacheNodeId``, measured and published for each node every 60 seconds
("Monitoring use with CloudWatch Metrics"). moto publishes nothing.

Gap filled from the real thing: a node is watched with a *sampler* (for the rehearsal's ElastiCache
stand-in, ``ElastiCacheEndpoint.connected_clients``: ``connected_clients`` read by the node's own
monitoring, so ElastiCache's monitoring connections are counted as AWS counts them,
``elasticache/monitoring.py``). When a CloudWatch read comes (GetMetricData, GetMetricStatistics,
ListMetrics), every watched node is sampled first, and the sample is kept as the datapoint of its
minute (ElastiCache publishes one a minute: a later sample in the same minute replaces it),
stamped with that moment: what the stand-in's clients did, read as ElastiCache would report it.
Watching a node also writes ``history_minutes`` of its first sample, one a minute, before that
moment (the time before the rehearsal).

A stretch of use (:func:`publish_usage`, for the decommission's soak): one datapoint a minute per
node of ``CurrConnections``, ``GetTypeCmds`` and ``SetTypeCmds`` (read-only and write commands in
the period) with the dimension ``CacheClusterId`` alone, which ElastiCache also publishes
(the CDK's canned ElastiCache metrics list both dimension sets); written straight into moto's
CloudWatch, as the service would: busy before the cutover, only ElastiCache's own connections after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from moto.cloudwatch.models import CloudWatchBackend, MetricDatum, MetricDatumBase, cloudwatch_backends

from redis_migration_ops.local_engine.elasticache.monitoring import MONITORING_CONNECTIONS
from redis_migration_ops.local_engine.lambda_.metrics import moto_timestamp
from redis_migration_ops.local_engine.moto_patch import MotoPatch

NAMESPACE = "AWS/ElastiCache"
Sampler = Callable[[], int | None]


class _Node:
    def __init__(self, cluster_id: str, node_id: str, sampler: Sampler) -> None:
        self.dimensions = [
            {"Name": "CacheClusterId", "Value": cluster_id},
            {"Name": "CacheNodeId", "Value": node_id},
        ]
        self.sampler = sampler
        # One value a minute, as ElastiCache publishes: a later sample in the same minute replaces it.
        self.by_minute: dict[datetime, MetricDatumBase] = {}

    def add(self, value: int, at: datetime) -> None:
        stamp = moto_timestamp(at)
        self.by_minute[stamp.replace(second=0, microsecond=0)] = MetricDatum(
            NAMESPACE, "CurrConnections", float(value), self.dimensions, stamp, "Count"
        )

    @property
    def data(self) -> list[MetricDatumBase]:
        return [self.by_minute[minute] for minute in sorted(self.by_minute)]


class ElastiCacheMetrics(MotoPatch):
    """Gap: moto publishes no ``AWS/ElastiCache`` metric. Fill: sampled ``CurrConnections`` (module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._lock = threading.Lock()
        # When a sample is taken (tests that run the bake at chosen times set their own).
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def install(self) -> None:
        original = CloudWatchBackend.aws_metric_data
        patch = self

        def aws_metric_data(backend: CloudWatchBackend) -> list[MetricDatumBase]:
            return [*original.fget(backend), *patch.sample_all()]  # type: ignore[attr-defined]

        self._replace(CloudWatchBackend, "aws_metric_data", property(aws_metric_data))

    def uninstall(self) -> None:
        super().uninstall()
        with self._lock:
            self._nodes.clear()

    def watch_node(
        self,
        cluster_id: str,
        node_id: str,
        sampler: Sampler,
        *,
        history_minutes: int = 0,
        now: datetime | None = None,
    ) -> None:
        """Publish ``CurrConnections`` of this node from ``sampler`` (None from it: no datapoint)."""
        node = _Node(cluster_id, node_id, sampler)
        now = now or self.clock()
        first = sampler()
        if first is not None:
            for minute in range(history_minutes, 0, -1):
                node.add(first, now - timedelta(minutes=minute))
            node.add(first, now)
        with self._lock:
            self._nodes[(cluster_id, node_id)] = node

    def sample_all(self) -> list[MetricDatumBase]:
        """Sample each watched node and answer every datapoint so far."""
        with self._lock:
            nodes = list(self._nodes.values())
        data: list[MetricDatumBase] = []
        for node in nodes:
            value = node.sampler()
            if value is not None:
                node.add(value, self.clock())
            data.extend(node.data)
        return data


# The connections ElastiCache's own monitoring keeps open (CurrConnections counts them).
OWN_CONNECTIONS = float(MONITORING_CONNECTIONS)


def publish_usage(  # noqa: PLR0917 - a stretch of use is all of these
    account_id: str,
    region: str,
    cluster_ids: list[str],
    start: datetime,
    end: datetime,
    connections: float,
    get_commands: float,
    set_commands: float,
    bytes_used: float | None = None,
) -> int:
    """One datapoint a minute from ``start`` (inclusive) to ``end`` (exclusive); answers how many per node.

    ``connections`` counts client connections (ElastiCache's own are added); the commands are per minute.
    ``bytes_used``: also ``BytesUsedForCache`` ("the total number of bytes allocated by Redis OSS for
    all purposes", INFO's ``used_memory``), when given.
    """
    backend = cloudwatch_backends[account_id][region]
    moments: list[datetime] = []
    # moto keeps timestamps as naive UTC (what its API parsing produces).
    moment = start.astimezone(UTC).replace(tzinfo=None) if start.tzinfo else start
    end = end.astimezone(UTC).replace(tzinfo=None) if end.tzinfo else end
    while moment < end:
        moments.append(moment)
        moment += timedelta(minutes=1)
    for cluster in cluster_ids:
        dimensions = [{"Name": "CacheClusterId", "Value": cluster}]
        data = []
        for at in moments:
            data += [
                {
                    "MetricName": "CurrConnections",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": connections + OWN_CONNECTIONS,
                    "Unit": "Count",
                },
                {
                    "MetricName": "GetTypeCmds",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": get_commands,
                    "Unit": "Count",
                },
                {
                    "MetricName": "SetTypeCmds",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": set_commands,
                    "Unit": "Count",
                },
            ]
            if bytes_used is not None:
                data.append(
                    {
                        "MetricName": "BytesUsedForCache",
                        "Dimensions": dimensions,
                        "Timestamp": at,
                        "Value": bytes_used,
                        "Unit": "Bytes",
                    }
                )
        for chunk in range(0, len(data), 1000):
            backend.put_metric_data(NAMESPACE, data[chunk : chunk + 1000])
    return len(moments)
