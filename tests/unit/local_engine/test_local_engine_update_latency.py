"""LambdaUpdateLatency: an update stays InProgress for a while; the function is locked meanwhile."""

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from redis_migration.aws import AwsClients
from redis_migration.steps.cut_over_function import write_variables

from redis_migration_ops.local_engine import LocalEngine

UPDATE_SECONDS = 1.0


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


@pytest.fixture
def slow_engine(fixtures_dir: Any) -> Iterator[LocalEngine]:
    """An engine whose Lambda updates take a second, with a function `worker`."""
    with LocalEngine(fixtures_dir, lambda_update_seconds=UPDATE_SECONDS) as running:
        role = running.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]
        running.client("lambda").create_function(
            FunctionName="worker",
            Runtime="python3.13",
            Role=role["Arn"],
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {"REDIS_HOST": "old", "OTHER": "kept"}},
        )
        yield running


def _status(client: Any) -> str:
    return str(client.get_function_configuration(FunctionName="worker")["LastUpdateStatus"])


def test_an_update_is_in_progress_and_locks_the_function(slow_engine: LocalEngine) -> None:
    client = slow_engine.client("lambda")
    # When the configuration is updated
    updated = client.update_function_configuration(
        FunctionName="worker", Environment={"Variables": {"A": "1"}}
    )
    # Then it is in progress, and a second update or a publish meanwhile is refused as on AWS
    assert updated["LastUpdateStatus"] == "InProgress"
    assert _status(client) == "InProgress"
    for call, arguments in (
        (client.update_function_configuration, {"Environment": {"Variables": {"A": "2"}}}),
        (client.publish_version, {}),
    ):
        with pytest.raises(ClientError) as refused:
            call(FunctionName="worker", **arguments)
        assert refused.value.response["Error"]["Code"] == "ResourceConflictException"
        assert refused.value.response["Error"]["Message"] == (
            "The operation cannot be performed at this time. An update is in progress for resource: "
            "arn:aws:lambda:us-east-1:123456789012:function:worker"
        )
    # And the waiter waits until it is done, after which updates are accepted again
    polls: list[str] = []
    client.meta.events.register("before-call.lambda.GetFunction", lambda **_: polls.append("poll"))
    client.get_waiter("function_updated_v2").wait(
        FunctionName="worker", WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    assert len(polls) >= 2
    assert _status(client) == "Successful"
    client.update_function_configuration(FunctionName="worker", Environment={"Variables": {"A": "3"}})


def test_the_products_write_really_waits_for_the_update(slow_engine: LocalEngine) -> None:
    # Given the product's write, with its own waiter settings, through the engine's clients
    client = slow_engine.client("lambda")
    polls: list[str] = []
    client.meta.events.register("before-call.lambda.GetFunction", lambda **_: polls.append("poll"))
    aws = AwsClients(factory=slow_engine.client)
    config = client.get_function_configuration(FunctionName="worker")
    # When it writes the managed keys
    write_variables(
        "worker", dict(config["Environment"]["Variables"]), {"REDIS_HOST": "10.0.0.5"}, config, aws
    )
    # Then it returned only after the update finished, having polled while it was in progress
    assert len(polls) >= 2
    assert _status(client) == "Successful"
    assert client.get_function_configuration(FunctionName="worker")["Environment"]["Variables"] == {
        "REDIS_HOST": "10.0.0.5",
        "OTHER": "kept",
    }


def test_updates_are_instant_by_default(engine: LocalEngine) -> None:
    client = engine.client("lambda")
    name = engine.stack.function_names["GreetFunction"]
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "1"}})
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"A": "2"}})
    assert client.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "Successful"
