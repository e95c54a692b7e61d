"""StopExecution ends an execution waiting for a task token at once (ABORTED), as on AWS."""

from __future__ import annotations

import json
import time

from redis_migration_ops.local_engine import LocalEngine


def test_stopping_an_execution_at_a_task_token_aborts_it_at_once(bare_engine: LocalEngine) -> None:
    # Given an execution waiting for a task token (an approval gate that would wait an hour)
    topic = bare_engine.client("sns").create_topic(Name="approvals")["TopicArn"]
    gate = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
        "Arguments": {"TopicArn": topic, "Message": "{% $states.context.Task.Token %}"},
        "TimeoutSeconds": 3600,
        "End": True,
    }
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "WaitForApproval",
        "States": {"WaitForApproval": gate},
    }
    sfn = bare_engine.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="gate", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/gate"
    )
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="gated", input="{}")[
        "executionArn"
    ]
    deadline = time.monotonic() + 20
    while not any(event["type"] == "TaskSubmitted" for event in bare_engine.history(arn)):
        assert time.monotonic() < deadline, "the gate was never reached"
        time.sleep(0.05)
    # When it is stopped
    sfn.stop_execution(executionArn=arn, error="Interrupted", cause="the operator stopped it")
    # Then it ends ABORTED at once, not after the gate's hour (nor FAILED by the woken task)
    described = bare_engine.wait_for_execution(arn, timeout_s=5)
    assert described["status"] == "ABORTED"
    assert bare_engine.history(arn)[-1]["type"] == "ExecutionAborted"
