"""CloudWatch GetMetricData: the request's limits and its pagination, as AWS applies them.

AWS (CloudWatch API Reference, GetMetricData,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html): "A
GetMetricData operation that does not include a query can retrieve as many as 500 different
metrics in a single request, with a total of as many as 100,800 data points"; ``MaxDatapoints``
is "the maximum number of data points the request should return before paginating. If you omit
this, the default of 100,800 is used", and ``NextToken`` asks for the rest, a series' values
continuing on the next page.

moto 5.2.5 answers any number of queries, every datapoint at once, and never a ``NextToken``. Gap
filled: more than 500 queries is refused with AWS's validation error; the answer is cut into
pages of ``MaxDatapoints`` datapoints (a series cut in the middle is marked ``PartialData`` and
goes on in the next page, as AWS does), so a caller that ignores ``NextToken``, or that does not
gather a series across pages, is caught here.

moto also scans every stored datapoint for every query and period (quadratic: a bake of 2,000
functions with minutes of history took minutes a request). Requests made only of ``MetricStat``
queries are answered from an index of the datapoints by metric and dimensions instead, with
moto's own statistics and its period rules (periods from ``StartTime``, a series matched on its
exact dimensions); requests with math expressions still go to moto's implementation.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import CloudWatchBackend, MetricDatumBase, Statistics
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from redis_migration_ops.local_engine.moto_patch import MotoPatch

MAX_QUERIES = 500
DEFAULT_MAX_DATAPOINTS = 100_800


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError):
        raise ValidationError("The parameter NextToken is invalid.") from None


def paginate_results(
    results: list[dict[str, Any]], offset: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The page of ``results`` holding datapoints ``offset`` to ``offset + limit - 1`` (counted
    across the series in order), and the next page's offset (None: this is the last page). A
    series without datapoints is answered on the first page."""
    page: list[dict[str, Any]] = []
    end = offset + limit
    position = 0
    for result in results:
        values = list(result.get("values", []))
        stamps = list(result.get("timestamps", []))
        first, last = position, position + len(values)  # this series' datapoints
        position = last
        if not values:
            if offset == 0:
                page.append(dict(result))
            continue
        low, high = max(first, offset), min(last, end)
        if low >= high:
            continue
        entry = dict(
            result, values=values[low - first : high - first], timestamps=stamps[low - first : high - first]
        )
        if high < last:
            entry["status_code"] = "PartialData"  # goes on in the next page
        page.append(entry)
    return page, (end if end < position else None)


SeriesKey = tuple[str, str, frozenset[tuple[str | None, str | None]]]


def _key(namespace: str, name: str, dimensions: list[Any]) -> SeriesKey:
    return namespace, name, frozenset((d.name, d.value) for d in dimensions)


def indexed_metric_data(
    backend: CloudWatchBackend, queries: list[dict[str, Any]], start: datetime, end: datetime, scan_by: str
) -> list[dict[str, Any]]:
    """moto's GetMetricData for ``MetricStat`` queries, from an index (same answers, linear time)."""
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    if start >= end:
        message = "The parameter StartTime must not equal parameter EndTime."
        raise ValidationError(
            message if start == end else "The parameter EndTime must be greater than StartTime."
        )
    index: dict[SeriesKey, list[MetricDatumBase]] = defaultdict(list)
    for datum in backend.get_all_metrics():
        if start <= datum.timestamp < end:
            index[_key(datum.namespace, datum.name, datum.dimensions)].append(datum)
    results = []
    for query in queries:
        stat_query = query["MetricStat"]
        metric = stat_query["Metric"]
        key = (
            metric["Namespace"],
            metric["MetricName"],
            frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])),
        )
        data = index.get(key, [])
        if stat_query.get("Unit"):
            data = [datum for datum in data if datum.unit == stat_query["Unit"]]
        delta = timedelta(seconds=int(stat_query["Period"]))
        stat = stat_query["Stat"]
        values: list[Any] = []
        stamps: list[datetime] = []
        period_start = start
        while period_start <= end:
            in_period = [datum for datum in data if period_start <= datum.timestamp < period_start + delta]
            if in_period:
                statistics = Statistics([stat], period_start)
                statistics.metric_data = in_period
                values.append(statistics.get_statistics_for_type(stat))
                stamps.append(statistics.timestamp)
            period_start += delta
        if scan_by == "TimestampDescending":
            values.reverse()
            stamps.reverse()
        if query.get("ReturnData", True):
            results.append(
                {
                    "id": query["Id"],
                    "label": query.get("Label") or f"{metric['MetricName']} {stat}",
                    "values": values,
                    "timestamps": stamps,
                    "status_code": "Complete",
                }
            )
    return results


class GetMetricDataLimits(MotoPatch):
    """Gap: moto's GetMetricData takes any number of queries and never paginates.

    Fill: over 500 ``MetricDataQueries`` is a ``ValidationError``; answers come in pages of
    ``MaxDatapoints`` (default 100,800) datapoints with ``NextToken``; ``MetricStat`` queries are
    answered from an index (module doc).
    """

    def install(self) -> None:
        def get_metric_data(response: CloudWatchResponse) -> ActionResult:
            params = response._get_params()
            queries = params.get("MetricDataQueries", [])
            if len(queries) > MAX_QUERIES:
                raise ValidationError(
                    "1 validation error detected: Value at 'metricDataQueries' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {MAX_QUERIES}"
                )
            for query in queries:
                if "MetricStat" not in query and "Expression" not in query:
                    raise ValidationError(
                        "The parameter MetricDataQueries.member.1.MetricStat is required.\n"
                    )
            limit = int(params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS)
            offset = _offset(params.get("NextToken"))
            scan_by = params.get("ScanBy") or "TimestampDescending"
            backend = response.cloudwatch_backend
            if all("MetricStat" in query for query in queries):
                results = indexed_metric_data(
                    backend, queries, params["StartTime"], params["EndTime"], scan_by
                )
            else:
                results = backend.get_metric_data(
                    start_time=params["StartTime"],
                    end_time=params["EndTime"],
                    queries=queries,
                    scan_by=scan_by,
                )
            page, next_offset = paginate_results(results, offset, limit)
            answer: dict[str, Any] = {"MetricDataResults": page}
            if next_offset is not None:
                answer["NextToken"] = _token(next_offset)
            return ActionResult(answer)

        self._replace(CloudWatchResponse, "get_metric_data", get_metric_data)
