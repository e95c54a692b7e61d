"""A function killed for its memory or its timeout answers as Lambda does, and Step Functions names
an error without ``errorType`` ``Lambda.Unknown`` (execution_limits, lambda_unknown)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.lambda_.in_process import FunctionRegistry, run_handler
from redis_migration_ops.local_engine.template import FunctionSpec


def _invoke(engine: LocalEngine, name: str, payload: Any) -> tuple[str | None, Any]:
    response = engine.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def _run_task(engine: LocalEngine, function_arn: str, item: dict[str, Any]) -> dict[str, Any]:
    """A one-Task state machine invoking the function through the optimised integration."""
    sfn = engine.client("stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {"item": item, "index": 0, "greeting": ""},
                },
                "Catch": [{"ErrorEquals": ["Lambda.Unknown"], "ResultPath": "$.error", "Next": "Named"}],
                "End": True,
            },
            "Named": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name=f"limits-{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/limits",
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    return engine.wait_for_execution(started["executionArn"], timeout_s=20)


def test_a_handler_out_of_memory_answers_the_sandbox_kill(engine: LocalEngine) -> None:
    # When the check function's handler runs out of memory
    error, payload = _invoke(
        engine,
        engine.stack.function_names["CheckFunction"],
        {"item": {"id": "big", "exhaustMemory": True}, "index": 0, "greeting": ""},
    )
    # Then Lambda's answer for a function its sandbox killed comes back, not a Python MemoryError
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in payload["errorMessage"]


def test_a_handler_past_its_timeout_answers_lambdas_timeout(tmp_path: Path) -> None:
    # Given a function with a one-second timeout whose handler takes longer
    code = tmp_path / "slow"
    code.mkdir()
    (code / "app.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(1.2)\n    return {'done': True}\n"
    )
    spec = FunctionSpec(
        logical_id="SlowFunction",
        name="slow",
        arn="arn:aws:lambda:us-east-1:123456789012:function:slow",
        code_dir=code,
        handler="app.handler",
        runtime="python3.11",
        timeout=1,
        memory_size=128,
        environment={},
        vpc_config=None,
        role_name="slow",
        role_arn="arn:aws:iam::123456789012:role/slow",
        role_from_template=True,
    )
    registry = FunctionRegistry()
    registry.register(spec)
    try:
        # When it is invoked
        payload, error = run_handler(registry, spec, b"{}")
        # Then what it computed is lost: the error Lambda answers at the timeout, without errorType
        answer = json.loads(payload)
        assert error is True
        assert "errorType" not in answer
        assert answer["errorMessage"].endswith("Task timed out after 1.00 seconds")
        # And within its timeout the same handler's answer is kept
        quick = dataclasses.replace(spec, name="quick", timeout=5)
        registry.register(quick)
        assert run_handler(registry, quick, b"{}") == (b'{"done": true}', False)
    finally:
        registry.forget_modules()


def test_step_functions_names_a_timed_out_function_lambda_unknown(engine: LocalEngine) -> None:
    # Given a function with a one-second timeout
    arn = engine.stack.function_arns["SlowFunction"]
    # When its handler runs past it, inside a Task
    timed_out = _run_task(engine, arn, {"id": "slow", "sleepSeconds": 1.3})
    # Then Step Functions reports Lambda.Unknown, which a Catch matches, the timeout in the cause
    assert timed_out["status"] == "SUCCEEDED"
    caught = json.loads(timed_out["output"])["error"]
    assert caught["Error"] == "Lambda.Unknown"
    assert "Task timed out after 1.00 seconds" in caught["Cause"]
    # And a named error keeps its name (the Catch does not see it)
    named = _run_task(engine, arn, {"id": "x", "fail": True})
    assert (named["status"], named["error"]) == ("FAILED", "PreconditionFailed")
    # And the sandbox's kill for memory keeps Lambda's errorType
    killed = _run_task(engine, arn, {"id": "y", "exhaustMemory": True})
    assert (killed["status"], killed["error"]) == ("FAILED", "Runtime.ExitError")
