"""SqsEventSourcePolling: an SQS mapping polls while the workflow waits; a frozen function's messages
come back after the visibility timeout and go to the dead-letter queue after maxReceiveCount."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine

_names = iter(range(1, 1000))


@dataclass
class Queues:
    url: str
    dlq_url: str
    mapping: str


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


def run_wait(engine: LocalEngine, seconds: int) -> None:
    """A state machine of one Wait state, run to its end (the engine skips the wait)."""
    name = f"wait-{next(_names)}"
    sfn = engine.client("stepfunctions")
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": True}}}
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/tiny"
    )
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name)
    assert engine.wait_for_execution(started["executionArn"], timeout_s=20)["status"] == "SUCCEEDED"


def counts(engine: LocalEngine, queues: Queues) -> tuple[int, int]:
    """(messages in the queue, visible or not; messages in its dead-letter queue)."""
    sqs = engine.client("sqs")

    def total(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    return total(queues.url), total(queues.dlq_url)


@pytest.fixture
def queues(bare_engine: LocalEngine) -> Queues:
    """A function fed by a queue (visibility timeout 10 s) whose messages go to a DLQ after 2 receives."""
    sqs, lambda_ = bare_engine.client("sqs"), bare_engine.client("lambda")
    dlq_url = sqs.create_queue(QueueName="calls-dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    dlq_arn = dlq["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName="calls",
        Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    role = bare_engine.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")
    lambda_.create_function(
        FunctionName="worker",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": _zip()},
    )
    mapping = lambda_.create_event_source_mapping(EventSourceArn=arn, FunctionName="worker", BatchSize=10)
    return Queues(url, dlq_url, mapping["UUID"])


def send(engine: LocalEngine, queues: Queues, count: int) -> None:
    for number in range(count):
        engine.client("sqs").send_message(QueueUrl=queues.url, MessageBody=f"call {number}")


def test_an_enabled_mapping_polls_while_the_workflow_waits(bare_engine: LocalEngine, queues: Queues) -> None:
    # Given 25 messages sent: none is delivered at SendMessage
    send(bare_engine, queues, 25)
    assert counts(bare_engine, queues) == (25, 0)
    # When the workflow waits a minute
    run_wait(bare_engine, 60)
    # Then the mapping received and processed them all, in batches
    assert counts(bare_engine, queues) == (0, 0)
    assert bare_engine.sqs_polling.delivered[queues.mapping] == 25


def test_a_frozen_function_s_messages_return_and_reach_the_dead_letter_queue(
    bare_engine: LocalEngine, queues: Queues
) -> None:
    # Given the function frozen (reserved concurrency 0) and 5 messages waiting
    lambda_ = bare_engine.client("lambda")
    lambda_.put_function_concurrency(FunctionName="worker", ReservedConcurrentExecutions=0)
    send(bare_engine, queues, 5)
    # When the workflow waits 10 s (one visibility timeout): each is received, throttled, back
    run_wait(bare_engine, 10)
    assert counts(bare_engine, queues) == (5, 0)
    assert bare_engine.sqs_polling.throttled[queues.mapping] == 5
    # When it waits 30 s more (three timeouts): the third receive passes maxReceiveCount 2
    run_wait(bare_engine, 30)
    # Then SQS moved them to the dead-letter queue; none was processed
    assert counts(bare_engine, queues) == (0, 5)
    assert bare_engine.sqs_polling.delivered[queues.mapping] == 0


def test_a_disabled_mapping_holds_its_messages_until_enabled_again(
    bare_engine: LocalEngine, queues: Queues
) -> None:
    lambda_ = bare_engine.client("lambda")
    # Given the mapping disabled, then the function frozen, for a 5-minute freeze with messages coming
    lambda_.update_event_source_mapping(UUID=queues.mapping, Enabled=False)
    assert lambda_.get_event_source_mapping(UUID=queues.mapping)["State"] == "Disabled"
    lambda_.put_function_concurrency(FunctionName="worker", ReservedConcurrentExecutions=0)
    send(bare_engine, queues, 8)
    run_wait(bare_engine, 300)
    # Then nothing was received meanwhile
    assert counts(bare_engine, queues) == (8, 0)
    assert bare_engine.sqs_polling.throttled[queues.mapping] == 0
    # When the function is thawed and the mapping enabled again
    lambda_.delete_function_concurrency(FunctionName="worker")
    lambda_.update_event_source_mapping(UUID=queues.mapping, Enabled=True)
    run_wait(bare_engine, 60)
    # Then every message was processed, none lost to the dead-letter queue
    assert counts(bare_engine, queues) == (0, 0)
    assert bare_engine.sqs_polling.delivered[queues.mapping] == 8
    rows: list[dict[str, Any]] = bare_engine.event_source_mappings()
    assert [(row["uuid"], row["state"]) for row in rows] == [(queues.mapping, "Enabled")]
