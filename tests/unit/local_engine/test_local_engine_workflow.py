"""The fixture workflow end to end: real handlers, instant waits, Catch, failure injection."""

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from redis_migration_ops.local_engine import INJECTED_ERROR, LocalEngine, LocalEngineError


def _items(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    return list(specs)


def test_handlers_run_and_their_boto3_calls_hit_moto(engine: LocalEngine) -> None:
    # Given the deployed fixture workflow
    # When an execution runs three items
    arn = engine.start_execution(
        {"name": "Ana", "items": _items({"id": "a"}, {"id": "b"}, {"id": "c"})}, "run"
    )
    described = engine.wait_for_execution(arn, timeout_s=20)
    # Then it succeeds with what the handlers returned
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"]) == {
        "greeting": "hello Ana",
        "count": 3,
        "ids": ["a", "b", "c"],
        "elapsedOk": True,
    }
    # And the greet handler's SSM write landed in moto
    parameter = engine.client("ssm").get_parameter(Name="/campaign/us-east-1/123456789012/greeting")
    assert parameter["Parameter"]["Value"] == "hello Ana"
    # And its context and Lambda output reached the history
    greet_output = next(
        json.loads(event["stateExitedEventDetails"]["output"])
        for event in engine.history(arn)
        if event["type"] == "TaskStateExited" and event["stateExitedEventDetails"]["name"] == "GreetTeam"
    )
    assert greet_output["function"] == "redis-migration-local-GreetFunction"
    assert greet_output["has_time_left"] is True
    assert greet_output["execution"] == arn


def test_waits_and_backoff_are_recorded_not_slept(engine: LocalEngine) -> None:
    # Given an item that glitches twice (Retry: 2 s, backoff 3) after a 30 s Wait
    started = time.monotonic()
    # When the execution runs
    arn = engine.start_execution({"name": "Bo", "items": _items({"id": "g", "glitches": 2})}, "glitchy")
    described = engine.wait_for_execution(arn, timeout_s=20)
    # Then it succeeds quickly, and the requested waits are recorded
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert time.monotonic() - started < 10
    waits = [(record.state_name, record.kind, record.seconds) for record in engine.requested_waits]
    assert waits == [
        ("PauseBeforeCheck", "Wait", 30.0),
        ("CheckItem", "Retry", 2.0),
        ("CheckItem", "Retry", 6.0),
    ]


def test_a_named_handler_error_reaches_catch_with_its_error_type(engine: LocalEngine) -> None:
    # Given an item whose check raises PreconditionFailed
    arn = engine.start_execution(
        {"name": "Cy", "items": _items({"id": "a"}, {"id": "x", "fail": True})}, "bad"
    )
    # When the execution ends
    described = engine.wait_for_execution(arn, timeout_s=20)
    # Then the Catch routed it by that name, through the SNS report, to the Fail state
    assert described["status"] == "FAILED"
    assert described["error"] == "PreconditionFailed"
    assert described["cause"] == "caught PreconditionFailed"
    states = [
        e["stateEnteredEventDetails"]["name"] for e in engine.history(arn) if "stateEnteredEventDetails" in e
    ]
    assert "ReportFailure" in states


def test_fail_at_injects_at_the_kth_invocation_inside_a_map(engine: LocalEngine) -> None:
    # Given the second invocation of CheckItem is made to fail (the fixture's Map runs one
    # iteration at a time: with four at once, a clean-clone CI run once got a sibling's
    # TaskScheduled event with its payload as timeoutInSeconds from moto 5.2.5 while the uncaught
    # failure aborted the siblings, and the history could not be serialised; the workflow's own
    # Maps catch every failure inside, so they never abort siblings)
    engine.fail_at("CheckItem", k=2)
    # When an execution checks three items
    arn = engine.start_execution(
        {"name": "Di", "items": _items({"id": "a"}, {"id": "b"}, {"id": "c"})}, "inj"
    )
    described = engine.wait_for_execution(arn, timeout_s=20)
    # Then it fails with the injected error, which no Retry or Catch handles
    assert described["status"] == "FAILED"
    assert described["error"] == INJECTED_ERROR
    # (moto aborts the sibling iterations with States.Runtime errors of its own: not counted)
    failures = [
        e["taskFailedEventDetails"]
        for e in engine.history(arn)
        if e["type"] == "TaskFailed" and e["taskFailedEventDetails"]["error"] == INJECTED_ERROR
    ]
    assert len(failures) == 1
    assert "invocation 2 of Task state 'CheckItem'" in failures[0]["cause"]


def test_fail_at_counts_retries_and_works_on_an_sns_task(engine: LocalEngine) -> None:
    # Given the first attempt of an SNS publish task is made to fail
    engine.fail_at("ReportFailure", k=1)
    # When a caught failure routes to it
    arn = engine.start_execution({"name": "Ed", "items": _items({"id": "x", "fail": True})}, "sns-inj")
    described = engine.wait_for_execution(arn, timeout_s=20)
    # Then the publish fails with the injected error
    assert described["status"] == "FAILED"
    assert described["error"] == INJECTED_ERROR


def test_fail_at_refuses_a_state_that_is_not_a_task(engine: LocalEngine) -> None:
    with pytest.raises(LocalEngineError, match="not a Task state"):
        engine.fail_at("Summarize")
    with pytest.raises(LocalEngineError, match="not a Task state"):
        engine.fail_at("NoSuchState")


def test_environment_is_set_for_the_engine_and_restored_after(fixtures_dir: Path) -> None:
    # Given no PROJECT_NAME in the environment
    assert "PROJECT_NAME" not in os.environ
    # When the engine deploys, then handlers see the template's resolved Globals environment
    with LocalEngine(fixtures_dir) as running:
        stack = running.deploy({"ProjectName": "campaign", "Environment": "prod"})
        assert os.environ["PROJECT_NAME"] == "campaign"
        assert os.environ["LOG_LEVEL"] == "INFO"
        assert os.environ["TOPIC_ARN"] == stack.topic_arns["NotifyTopic"]
    # And it is gone afterwards
    assert "PROJECT_NAME" not in os.environ
