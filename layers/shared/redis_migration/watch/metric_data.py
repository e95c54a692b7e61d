"""Reading CloudWatch metrics in bulk: GetMetricData in requests of at most 500 queries, paginated.

``GetMetricData`` takes at most 500 ``MetricDataQuery`` structures a request and answers at most
100,800 datapoints a page (``NextToken`` for the rest), a query's values possibly split across
pages (CloudWatch API Reference, GetMetricData:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html). A bake
of 2,000 functions asks for 4,000 series (Errors and Throttles of each), so the queries go out in
requests of 500, each read to its end through boto3's paginator, and each query's values are
gathered by its ``Id`` across pages.

AWS services publish only the metrics they have: Lambda sends ``Errors`` for a minute only when it
is not zero, so a series with no datapoint counts as zero, not as unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis_migration.errors import MetricsUnreadable, TransientError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

MAX_QUERIES_PER_REQUEST = 500


@dataclass(frozen=True)
class MetricSeries:
    """One metric to read: namespace, name, dimensions, statistic and period (seconds)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int

    def query(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [{"Name": key, "Value": value} for key, value in self.dimensions],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass
class SeriesValues:
    """What CloudWatch answered for one series: (timestamp, value) pairs, oldest first."""

    points: list[tuple[datetime, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(value for _, value in self.points)

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None


@dataclass(frozen=True)
class MetricReading:
    """Every series' values, in the order asked, and how many requests it took."""

    values: list[SeriesValues]
    requests: int


def read_metrics(
    cloudwatch: CloudWatchClient,
    series: Sequence[MetricSeries],
    start: datetime,
    end: datetime,
    *,
    page_size: int | None = None,
) -> MetricReading:
    """Read every series over ``[start, end)``; a series without data has no points.

    Raises TransientError when CloudWatch answers a series with ``InternalError`` (its own
    failure, worth a retry), MetricsUnreadable when it answers ``Forbidden``.
    """
    gathered = [SeriesValues() for _ in series]
    requests = 0
    for offset in range(0, len(series), MAX_QUERIES_PER_REQUEST):
        chunk = series[offset : offset + MAX_QUERIES_PER_REQUEST]
        ids = {f"m{offset + index}": offset + index for index in range(len(chunk))}
        queries = [item.query(query_id) for query_id, item in zip(ids, chunk, strict=True)]
        paginator = cloudwatch.get_paginator("get_metric_data")
        config = {"PageSize": page_size} if page_size else {}
        pages = paginator.paginate(
            MetricDataQueries=queries,  # type: ignore[arg-type]
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
            PaginationConfig=config,  # type: ignore[arg-type]
        )
        for page in pages:
            requests += 1
            for result in page.get("MetricDataResults", []):
                status = result.get("StatusCode", "Complete")
                if status == "InternalError":
                    raise TransientError(f"CloudWatch answered InternalError for {result.get('Id')}")
                if status == "Forbidden":
                    raise MetricsUnreadable(f"CloudWatch refused metric {result.get('Label')}: Forbidden")
                target = gathered[ids[result["Id"]]]
                target.points.extend(
                    zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                )
    for values in gathered:
        values.points.sort(key=lambda point: point[0])
    return MetricReading(values=gathered, requests=requests)


__all__ = ["MAX_QUERIES_PER_REQUEST", "MetricReading", "MetricSeries", "SeriesValues", "read_metrics"]
