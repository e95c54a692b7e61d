"""ElastiCache's per-node CloudWatch metrics for a rehearsal (moto's ElastiCache publishes none).

What AWS does ("Metrics for Valkey and Redis OSS", "Host-level metrics"):
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html
ElastiCache publishes each node's metrics in the ``AWS/ElastiCache`` namespace every 60 seconds,
with the dimension ``CacheClusterId`` (the node's member cluster): among them ``CurrConnections``
(client connections, of which "ElastiCache uses two to four ... to monitor the cluster"),
``GetTypeCmds`` and ``SetTypeCmds`` (read-only and write commands in the period). Callers cannot
publish into ``AWS/`` namespaces themselves.

Filled here: :func:`publish_usage` writes one datapoint a minute per node for a stretch of time
(what a timeline of use looks like: busy before the cutover, only ElastiCache's own connections
after it), straight into moto's CloudWatch, as the service would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moto.cloudwatch.models import cloudwatch_backends

NAMESPACE = "AWS/ElastiCache"
# The connections ElastiCache's own monitoring keeps open (CurrConnections counts them).
OWN_CONNECTIONS = 2.0


def publish_usage(  # noqa: PLR0917 - a stretch of use is all of these
    account_id: str,
    region: str,
    cluster_ids: list[str],
    start: datetime,
    end: datetime,
    connections: float,
    get_commands: float,
    set_commands: float,
) -> int:
    """One datapoint a minute from ``start`` (inclusive) to ``end`` (exclusive); answers how many per node.

    ``connections`` counts client connections (ElastiCache's own are added); the commands are per minute.
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
        for chunk in range(0, len(data), 1000):
            backend.put_metric_data(NAMESPACE, data[chunk : chunk + 1000])
    return len(moments)
