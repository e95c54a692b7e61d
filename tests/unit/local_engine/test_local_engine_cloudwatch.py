"""The engine's CloudWatch: GetMetricData's limits and pages, Lambda's and ElastiCache's metrics."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.cloudwatch.models import cloudwatch_backends
from redis_migration.watch.metric_data import MetricSeries, read_metrics

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.cloudwatch.metric_data import indexed_metric_data, paginate_results
from redis_migration_ops.local_engine.lambda_.metrics import LambdaTraffic, TrafficRates

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def errors_of(function: str, period: int = 60) -> MetricSeries:
    return MetricSeries("AWS/Lambda", "Errors", (("FunctionName", function),), "Sum", period)


def query(index: int) -> dict[str, Any]:
    return errors_of(f"f{index}").query(f"m{index}")


def test_more_than_500_queries_in_one_request_are_refused_as_aws_does(bare_engine: LocalEngine) -> None:
    cloudwatch = bare_engine.client("cloudwatch")
    window = {"StartTime": NOW - timedelta(minutes=5), "EndTime": NOW}

    assert cloudwatch.get_metric_data(MetricDataQueries=[query(i) for i in range(500)], **window)

    with pytest.raises(ClientError) as raised:
        cloudwatch.get_metric_data(MetricDataQueries=[query(i) for i in range(501)], **window)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "less than or equal to 500" in raised.value.response["Error"]["Message"]


def test_answers_come_in_pages_of_max_datapoints_and_a_series_goes_on_across_pages(
    bare_engine: LocalEngine,
) -> None:
    # Given 10 minutes of errors on one function and 3 on another
    for minute in range(10):
        bare_engine.lambda_metrics.record("a", NOW - timedelta(minutes=10 - minute), errors=1 + minute)
    for minute in range(3):
        bare_engine.lambda_metrics.record("b", NOW - timedelta(minutes=3 - minute), errors=100)
    cloudwatch = bare_engine.client("cloudwatch")
    window = {"StartTime": NOW - timedelta(minutes=10), "EndTime": NOW}
    queries = [errors_of("a").query("a"), errors_of("none").query("n"), errors_of("b").query("b")]

    # When asked 4 datapoints at a time
    first = cloudwatch.get_metric_data(MetricDataQueries=queries, MaxDatapoints=4, **window)
    second = cloudwatch.get_metric_data(
        MetricDataQueries=queries, MaxDatapoints=4, NextToken=first["NextToken"], **window
    )

    # Then a series cut by the page is PartialData and goes on in the next one
    assert [(r["Id"], len(r["Values"]), r["StatusCode"]) for r in first["MetricDataResults"]] == [
        ("a", 4, "PartialData"),
        ("n", 0, "Complete"),
    ]
    assert [(r["Id"], len(r["Values"]), r["StatusCode"]) for r in second["MetricDataResults"]] == [
        ("a", 4, "PartialData")
    ]
    # ... and read_metrics gathers every series across the pages, in time order
    reading = read_metrics(
        cloudwatch,
        [errors_of("a"), errors_of("none"), errors_of("b")],
        NOW - timedelta(minutes=10),
        NOW,
        page_size=4,
    )
    assert [values.total for values in reading.values] == [55, 0, 300]
    assert [value for _, value in reading.values[0].points] == [float(n) for n in range(1, 11)]
    assert reading.values[0].latest == 10
    assert reading.requests == 4


def test_pages_cover_every_datapoint_once() -> None:
    results: list[dict[str, Any]] = [
        {"id": "a", "values": [1, 2, 3], "timestamps": [1, 2, 3], "status_code": "Complete"},
        {"id": "e", "values": [], "timestamps": [], "status_code": "Complete"},
        {"id": "b", "values": [4, 5], "timestamps": [4, 5], "status_code": "Complete"},
    ]
    for limit in (1, 2, 3, 4, 5, 100):
        offset: int | None = 0
        seen: list[int] = []
        ids: list[str] = []
        while offset is not None:
            page, offset = paginate_results(results, offset, limit)
            assert sum(len(entry["values"]) for entry in page) <= limit
            seen += [value for entry in page for value in entry["values"]]
            ids += [entry["id"] for entry in page if not entry["values"]]
        assert seen == [1, 2, 3, 4, 5]
        assert ids == ["e"]


def run_wait(engine: LocalEngine, seconds: int, name: str) -> None:
    """A state machine of one Wait state, run to its end (the engine skips the wait)."""
    sfn = engine.client("stepfunctions")
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": True}}}
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/tiny"
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name)
    assert engine.wait_for_execution(started["executionArn"], timeout_s=20)["status"] == "SUCCEEDED"


def test_lambda_traffic_follows_the_redis_each_function_uses(engine: LocalEngine) -> None:
    # Given a client function with steady traffic, that fails on another Redis
    lambda_ = engine.client("lambda")
    name = engine.stack.function_names["GreetFunction"]
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": {"REDIS_HOST": "old"}})
    engine.lambda_metrics.add_traffic(
        LambdaTraffic(
            name, before=TrafficRates(invocations=20, errors=1), after=TrafficRates(invocations=20, errors=8)
        ),
        history_minutes=5,
    )
    start = datetime.now(UTC) - timedelta(minutes=6)

    # When the workflow waits 2 minutes, the function is switched, and it waits 3 more
    run_wait(engine, 120, "wait-1")
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": {"REDIS_HOST": "new"}})
    run_wait(engine, 180, "wait-2")

    # Then Lambda's metrics show the history, the 2 minutes before and the 3 minutes after
    end = datetime.now(UTC) + timedelta(minutes=1)
    reading = read_metrics(
        engine.client("cloudwatch"),
        [
            errors_of(name, 600),
            MetricSeries("AWS/Lambda", "Invocations", (("FunctionName", name),), "Sum", 600),
        ],
        start,
        end,
    )
    assert [values.total for values in reading.values] == [5 * 1 + 2 * 1 + 3 * 8, 10 * 20]


def test_a_frozen_function_is_throttled_and_each_minute_keeps_its_own_datapoint(engine: LocalEngine) -> None:
    # Given a function called 30 times a minute, with an error a minute
    lambda_ = engine.client("lambda")
    name = engine.stack.function_names["GreetFunction"]
    engine.lambda_metrics.add_traffic(LambdaTraffic(name, before=TrafficRates(invocations=30, errors=1)))
    start = datetime.now(UTC) - timedelta(minutes=1)

    # When it is frozen (reserved concurrency 0) while the workflow waits 90 s, then thawed for 60 s
    lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    run_wait(engine, 90, "frozen")
    lambda_.delete_function_concurrency(FunctionName=name)
    run_wait(engine, 60, "thawed")

    # Then the frozen stretch is all throttles (no invocation, no error), the thawed one normal traffic
    end = datetime.now(UTC) + timedelta(minutes=1)
    series = [
        MetricSeries("AWS/Lambda", metric, (("FunctionName", name),), "Sum", 600)
        for metric in ("Throttles", "Invocations", "Errors")
    ]
    reading = read_metrics(engine.client("cloudwatch"), series, start, end)
    assert [values.total for values in reading.values] == pytest.approx([45, 30, 1])
    # ... and every datapoint is stamped with the start of its minute, as CloudWatch buckets them
    stamps = [
        datum.timestamp
        for datum in cloudwatch_backends[engine.account_id][engine.region].metric_data
        if datum.namespace == "AWS/Lambda"
    ]
    assert stamps
    assert all(stamp.second == 0 and stamp.microsecond == 0 for stamp in stamps)


def test_elasticache_connections_are_sampled_when_read(bare_engine: LocalEngine) -> None:
    # Given a node watched at NOW + 10 s with 9 connections (and 3 minutes of history)
    connections = [9]
    bare_engine.elasticache_metrics.watch_node(
        "cache-001", "0001", lambda: connections[0], history_minutes=3, now=NOW + timedelta(seconds=10)
    )
    series = MetricSeries(
        "AWS/ElastiCache",
        "CurrConnections",
        (("CacheClusterId", "cache-001"), ("CacheNodeId", "0001")),
        "Maximum",
        60,
    )
    # When a minute later its clients have left and CloudWatch is read
    connections[0] = 1
    bare_engine.elasticache_metrics.clock = lambda: NOW + timedelta(seconds=70)

    reading = read_metrics(
        bare_engine.client("cloudwatch"), [series], NOW - timedelta(minutes=5), NOW + timedelta(minutes=2)
    )

    assert [value for _, value in reading.values[0].points] == [9, 9, 9, 9, 1]
    assert reading.values[0].latest == 1


def test_the_indexed_answer_is_moto_s_own(bare_engine: LocalEngine) -> None:
    # Given datapoints on a few series, with and without units, over half an hour
    rng = random.Random(7)
    names = ["a", "b", "c"]
    for _ in range(300):
        bare_engine.lambda_metrics.record(
            rng.choice(names), NOW - timedelta(seconds=rng.randint(0, 1800)), errors=rng.randint(1, 9)
        )
    backend = cloudwatch_backends[bare_engine.account_id][bare_engine.region]
    queries = [
        MetricSeries("AWS/Lambda", metric, (("FunctionName", name),), stat, period).query(f"q{i}")
        for i, (name, metric, stat, period) in enumerate(
            (n, m, s, p)
            for n in [*names, "none"]
            for m in ("Errors", "Invocations")
            for s in ("Sum", "Maximum", "Average", "SampleCount")
            for p in (60, 300, 1800)
        )
    ]
    start, end = (NOW - timedelta(minutes=31)).replace(tzinfo=None), NOW.replace(tzinfo=None)

    # Then the index answers what moto's scan answers, for every statistic and period
    for scan_by in ("TimestampAscending", "TimestampDescending"):
        assert indexed_metric_data(backend, queries, start, end, scan_by) == backend.get_metric_data(
            queries, start, end, scan_by
        )
