"""StateDataLimit: 256 KiB (262,144 bytes of UTF-8 JSON) on state data and the execution input."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.stepfunctions.state_data_limit import MAX_PAYLOAD_BYTES, payload_bytes

LIMIT_ERROR = "States.DataLimitExceeded"
RunAsl = Callable[[dict[str, Any], Any], dict[str, Any]]


def _doubling_machine() -> dict[str, Any]:
    """A Pass state whose output is the string s & s & t (its JSON size: 2 len(s) + len(t) + 2)."""
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Pass",
                "Output": "{% $states.input.s & $states.input.s & $states.input.t %}",
                "End": True,
            }
        },
    }


def test_a_state_output_of_exactly_256_kib_passes(run_asl: RunAsl) -> None:
    # Given an output of 2 * 131,071 + 2 (quotes) = 262,144 bytes
    described = run_asl(_doubling_machine(), {"s": "x" * 131_071, "t": ""})
    # Then the execution succeeds with it
    assert described["status"] == "SUCCEEDED", described.get("cause")
    # (moto reports a string output without its JSON quotes)
    output = described["output"]
    assert payload_bytes(json.loads(output) if output.startswith('"') else output) == MAX_PAYLOAD_BYTES


def test_a_state_output_one_byte_over_fails_the_execution(run_asl: RunAsl) -> None:
    # Given an output of 262,145 bytes
    described = run_asl(_doubling_machine(), {"s": "x" * 131_071, "t": "y"})
    # Then the execution fails with the terminal error
    assert described["status"] == "FAILED"
    assert described["error"] == LIMIT_ERROR


def _task_machine(function_arn: str, payload: Any) -> dict[str, Any]:
    """One Lambda Task with a Retry and a Catch on States.ALL (which must not see the limit)."""
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": function_arn, "Payload": payload},
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }


def test_an_oversized_task_result_is_caught_by_nothing_not_even_states_all(engine: LocalEngine) -> None:
    # Given a Task whose small arguments ask the function for a result over 256 KiB
    definition = _task_machine(engine.stack.function_arns["PadFunction"], {"characters": MAX_PAYLOAD_BYTES})
    # When it runs
    described = _run(engine, definition, {})
    # Then the execution fails with States.DataLimitExceeded: no retry, no catch
    assert described["status"] == "FAILED"
    assert described["error"] == LIMIT_ERROR
    assert [wait for wait in engine.requested_waits if wait.kind == "Retry"] == []


def test_oversized_task_arguments_fail_the_execution_uncaught(engine: LocalEngine) -> None:
    # Given a Task whose arguments (the input doubled) are over 256 KiB
    payload = {"characters": 1, "copy": "{% $states.input.s & $states.input.s %}"}
    definition = _task_machine(engine.stack.function_arns["PadFunction"], payload)
    # When it runs
    described = _run(engine, definition, {"s": "x" * (MAX_PAYLOAD_BYTES // 2)})
    # Then the execution fails before the function is invoked, whatever the Catch says
    assert described["status"] == "FAILED"
    assert described["error"] == LIMIT_ERROR
    assert "arguments" in described["cause"]


def _run(engine: LocalEngine, definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    sfn = engine.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="task-limit", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/tiny"
    )
    started = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name="task-limit", input=json.dumps(execution_input)
    )
    return engine.wait_for_execution(started["executionArn"], timeout_s=20)


def _machine(engine: LocalEngine) -> str:
    created = engine.client("stepfunctions").create_state_machine(
        name="pass-through",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/tiny",
    )
    return str(created["stateMachineArn"])


def test_start_execution_counts_utf8_bytes_of_the_input(bare_engine: LocalEngine) -> None:
    sfn = bare_engine.client("stepfunctions")
    machine = _machine(bare_engine)
    # Given inputs of 262,144 and 262,145 bytes, written with two-byte characters (fewer characters)
    exact = '{"s":"' + "é" * 131_068 + '"}'
    over = '{"s":"' + "é" * 131_068 + 'x"}'
    assert (len(exact.encode()), len(over.encode())) == (MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1)
    # When started, then the exact one runs to its end
    started = sfn.start_execution(stateMachineArn=machine, name="exact", input=exact)
    assert bare_engine.wait_for_execution(started["executionArn"], timeout_s=20)["status"] == "SUCCEEDED"
    # And the one over the limit is refused by the API, naming the input
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, name="over", input=over)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'input'" in refused.value.response["Error"]["Message"]
