"""A client function's invocation (lambda_/running_invocations.py): throttled at reserved concurrency 0,
and a Wait lasts until an invocation that was already running has ended, as its timeout guarantees."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.lambda_.client_identity import current_client_function
from redis_migration_ops.local_engine.lambda_.running_invocations import FunctionThrottled

HOLD_S = 1.0


def a_function(engine: LocalEngine, timeout: int) -> str:
    lambda_ = engine.client("lambda")
    name = str(lambda_.list_functions()["Functions"][0]["FunctionName"])
    lambda_.update_function_configuration(FunctionName=name, Timeout=timeout)
    return name


def run_wait(engine: LocalEngine, seconds: int, name: str) -> str:
    sfn = engine.client("stepfunctions")
    definition = {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": seconds, "End": True}}}
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/tiny"
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"{name}-run", input="{}")
    return str(started["executionArn"])


def hold_an_invocation(engine: LocalEngine, function: str) -> tuple[threading.Event, list[float]]:
    """An invocation of ``function`` that runs for HOLD_S; answers (entered, [its end time])."""
    entered, ended = threading.Event(), []

    def invoke() -> None:
        with engine.client_invocation(function):
            entered.set()
            time.sleep(HOLD_S)
        ended.append(time.monotonic())

    threading.Thread(target=invoke, daemon=True).start()
    assert entered.wait(5)
    return entered, ended


def test_an_invocation_is_refused_at_reserved_concurrency_zero_and_runs_as_its_function(
    engine: LocalEngine,
) -> None:
    # Given a function frozen as the consistent mode freezes it
    function = a_function(engine, 3)
    lambda_ = engine.client("lambda")
    lambda_.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)

    # Then an invocation is throttled (and counted); it writes nothing
    ran: list[Any] = []
    with pytest.raises(FunctionThrottled), engine.client_invocation(function):
        ran.append("body")
    assert ran == []
    assert engine.throttled_invocations == {function: 1}

    # And once thawed it runs, as that function
    lambda_.delete_function_concurrency(FunctionName=function)
    with engine.client_invocation(function):
        ran.append(current_client_function())
    assert ran == [function]


def test_a_wait_lasts_until_an_invocation_that_was_running_before_it_has_ended(engine: LocalEngine) -> None:
    # Given an invocation running when the workflow's Wait (longer than the function's timeout) begins
    function = a_function(engine, 3)
    _, ended = hold_an_invocation(engine, function)

    # When the workflow waits 5 s (instant in the engine)
    arn = run_wait(engine, 5, "waits-for-running")
    engine.wait_for_execution(arn, timeout_s=20)
    finished = time.monotonic()

    # Then the Wait ended only after the invocation did, as 5 s on AWS would guarantee
    assert ended, "the Wait ended while the invocation still ran"
    assert ended[0] <= finished


def test_a_wait_shorter_than_the_functions_timeout_does_not_wait_for_it(engine: LocalEngine) -> None:
    # Given an invocation of a function with a 60 s timeout, running
    function = a_function(engine, 60)
    _, ended = hold_an_invocation(engine, function)

    # When the workflow waits 2 s
    arn = run_wait(engine, 2, "does-not-wait")
    engine.wait_for_execution(arn, timeout_s=20)

    # Then the Wait is over while the invocation still runs (2 s guarantee nothing about it)
    assert ended == []
