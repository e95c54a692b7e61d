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
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
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


class GetMetricDataLimits(MotoPatch):
    """Gap: moto's GetMetricData takes any number of queries and never paginates.

    Fill: over 500 ``MetricDataQueries`` is a ``ValidationError``; answers come in pages of
    ``MaxDatapoints`` (default 100,800) datapoints with ``NextToken``.
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
            results = response.cloudwatch_backend.get_metric_data(
                start_time=params["StartTime"],
                end_time=params["EndTime"],
                queries=queries,
                scan_by=params.get("ScanBy") or "TimestampDescending",
            )
            page, next_offset = paginate_results(results, offset, limit)
            answer: dict[str, Any] = {"MetricDataResults": page}
            if next_offset is not None:
                answer["NextToken"] = _token(next_offset)
            return ActionResult(answer)

        self._replace(CloudWatchResponse, "get_metric_data", get_metric_data)
