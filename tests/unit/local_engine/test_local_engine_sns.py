"""SnsPublishLimits: Subject under 100 printable ASCII characters, Message at most 262,144 bytes."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from redis_migration_ops.local_engine import LocalEngine

RunAsl = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def topic(bare_engine: LocalEngine) -> str:
    return str(bare_engine.client("sns").create_topic(Name="notifications")["TopicArn"])


def _refusal(engine: LocalEngine, topic: str, **arguments: Any) -> str:
    with pytest.raises(ClientError) as refused:
        engine.client("sns").publish(TopicArn=topic, **arguments)
    assert refused.value.response["Error"]["Code"] == "InvalidParameter"
    return str(refused.value.response["Error"]["Message"])


def test_a_subject_must_be_under_100_characters(bare_engine: LocalEngine, topic: str) -> None:
    sns = bare_engine.client("sns")
    # 99 characters are accepted
    assert sns.publish(TopicArn=topic, Subject="s" * 99, Message="m")["MessageId"]
    # 100 are refused, naming the field
    assert "Subject" in _refusal(bare_engine, topic, Subject="s" * 100, Message="m")


@pytest.mark.parametrize("subject", ["two\nlines", "tab\there", "café", "", " leading space"])
def test_a_subject_must_be_printable_ascii_on_one_line(
    bare_engine: LocalEngine, topic: str, subject: str
) -> None:
    assert "Subject" in _refusal(bare_engine, topic, Subject=subject, Message="m")


def test_a_message_is_limited_in_bytes_not_characters(bare_engine: LocalEngine, topic: str) -> None:
    sns = bare_engine.client("sns")
    # 262,144 bytes pass; 131,073 two-byte characters (262,146 bytes) do not
    assert sns.publish(TopicArn=topic, Message="m" * 262_144)["MessageId"]
    assert "Message too long" in _refusal(bare_engine, topic, Message="é" * 131_073)


def test_an_sns_task_with_a_long_subject_fails_with_sns_invalid_parameter(
    run_asl: RunAsl, topic: str
) -> None:
    # Given a state machine that publishes with a 100-character subject
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Notify",
        "States": {
            "Notify": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Arguments": {"TopicArn": topic, "Subject": "s" * 100, "Message": "hello"},
                "End": True,
            }
        },
    }
    # When it runs, then the task fails as on AWS
    described = run_asl(definition, {})
    assert described["status"] == "FAILED"
    assert described["error"] == "SNS.InvalidParameterException"
    assert "Subject" in json.dumps(described.get("cause"))
