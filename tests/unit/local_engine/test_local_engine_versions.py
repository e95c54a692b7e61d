"""LambdaVersionsAndAliases: $LATEST changes, versions freeze, aliases serve versions; RevisionIds."""

import io
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from redis_migration_ops.local_engine import LocalEngine


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


@pytest.fixture
def lambda_(bare_engine: LocalEngine) -> Any:
    """A client, and a function `worker` whose environment is REDIS_HOST=old."""
    role = bare_engine.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]
    client = bare_engine.client("lambda")
    client.create_function(
        FunctionName="worker",
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        Environment={"Variables": {"REDIS_HOST": "old"}},
    )
    return client


def _host(client: Any, **qualifier: str) -> str:
    configuration = client.get_function_configuration(FunctionName="worker", **qualifier)
    return str(configuration["Environment"]["Variables"]["REDIS_HOST"])


def _error(call: Any, **arguments: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as refused:
        call(**arguments)
    return dict(refused.value.response["Error"])


# -- what moto 5.2.5 already does as AWS does (guards the pin) --------------------------------------


def test_a_published_version_freezes_the_environment_and_an_alias_serves_it(lambda_: Any) -> None:
    # Given version 1 published with the old host and an alias on it
    assert lambda_.publish_version(FunctionName="worker")["Version"] == "1"
    lambda_.create_alias(FunctionName="worker", Name="live", FunctionVersion="1")
    # When $LATEST is updated
    lambda_.update_function_configuration(
        FunctionName="worker", Environment={"Variables": {"REDIS_HOST": "new"}}
    )
    # Then only $LATEST changed: the version, and the alias serving it, keep the old host
    assert _host(lambda_) == "new"
    assert _host(lambda_, Qualifier="1") == "old"
    assert _host(lambda_, Qualifier="live") == "old"
    assert lambda_.get_function(FunctionName="worker", Qualifier="live")["Configuration"]["Version"] == "1"
    # And a new version freezes the new host; publishing again without a change makes none
    assert lambda_.publish_version(FunctionName="worker")["Version"] == "2"
    assert lambda_.publish_version(FunctionName="worker")["Version"] == "2"
    assert _host(lambda_, Qualifier="2") == "new"
    # And ListFunctions shows $LATEST only unless asked for every version
    assert [f["Version"] for f in lambda_.list_functions()["Functions"]] == ["$LATEST"]
    listed = lambda_.list_functions(FunctionVersion="ALL")["Functions"]
    assert sorted(f["Version"] for f in listed) == ["$LATEST", "1", "2"]


def test_an_alias_keeps_its_routing_config(lambda_: Any) -> None:
    lambda_.publish_version(FunctionName="worker")
    lambda_.update_function_configuration(
        FunctionName="worker", Environment={"Variables": {"REDIS_HOST": "new"}}
    )
    lambda_.publish_version(FunctionName="worker")
    lambda_.create_alias(
        FunctionName="worker",
        Name="canary",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    alias = lambda_.get_alias(FunctionName="worker", Name="canary")
    assert (alias["FunctionVersion"], alias["RoutingConfig"]) == (
        "1",
        {"AdditionalVersionWeights": {"2": 0.1}},
    )


# -- what the engine fills ------------------------------------------------------------------------


def test_a_published_version_cannot_be_updated(lambda_: Any) -> None:
    lambda_.publish_version(FunctionName="worker")
    # When an update names version 1 (by name:qualifier or qualified ARN)
    for name in ("worker:1", "arn:aws:lambda:us-east-1:123456789012:function:worker:1"):
        error = _error(
            lambda_.update_function_configuration,
            FunctionName=name,
            Environment={"Variables": {"REDIS_HOST": "x"}},
        )
        # Then Lambda refuses: only $LATEST can change
        assert error["Code"] == "InvalidParameterValueException"
        assert "$LATEST" in error["Message"]
    assert _host(lambda_, Qualifier="1") == "old"


def test_each_version_has_its_own_revision_and_publish_honours_revision_id(lambda_: Any) -> None:
    latest = lambda_.get_function_configuration(FunctionName="worker")["RevisionId"]
    # A stale RevisionId refuses the publish
    error = _error(lambda_.publish_version, FunctionName="worker", RevisionId="stale")
    assert error["Code"] == "PreconditionFailedException"
    # The current one publishes; the version gets its own revision
    version = lambda_.publish_version(FunctionName="worker", RevisionId=latest)
    assert version["RevisionId"] != latest
    assert (
        lambda_.get_function_configuration(FunctionName="worker", Qualifier="1")["RevisionId"]
        == version["RevisionId"]
    )


def test_update_alias_honours_revision_id_and_changes_it(lambda_: Any) -> None:
    lambda_.publish_version(FunctionName="worker")
    lambda_.update_function_configuration(
        FunctionName="worker", Environment={"Variables": {"REDIS_HOST": "new"}}
    )
    lambda_.publish_version(FunctionName="worker")
    created = lambda_.create_alias(FunctionName="worker", Name="live", FunctionVersion="1")
    # A stale revision is refused and the alias stays where it was
    error = _error(
        lambda_.update_alias, FunctionName="worker", Name="live", FunctionVersion="2", RevisionId="stale"
    )
    assert error["Code"] == "PreconditionFailedException"
    assert lambda_.get_alias(FunctionName="worker", Name="live")["FunctionVersion"] == "1"
    # The current one moves it, and the alias gets a new revision
    moved = lambda_.update_alias(
        FunctionName="worker", Name="live", FunctionVersion="2", RevisionId=created["RevisionId"]
    )
    assert moved["FunctionVersion"] == "2"
    assert moved["RevisionId"] != created["RevisionId"]
    assert _host(lambda_, Qualifier="live") == "new"
    # And the old revision no longer works
    error = _error(
        lambda_.update_alias,
        FunctionName="worker",
        Name="live",
        FunctionVersion="1",
        RevisionId=created["RevisionId"],
    )
    assert error["Code"] == "PreconditionFailedException"


def test_routing_config_is_validated(lambda_: Any) -> None:
    lambda_.publish_version(FunctionName="worker")
    lambda_.create_alias(FunctionName="worker", Name="live", FunctionVersion="1")
    for weights in ({"1": 0.5}, {"2": 0.5}, {"1": 1.5}):
        error = _error(
            lambda_.update_alias,
            FunctionName="worker",
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": weights},
        )
        assert error["Code"] in ("InvalidParameterValueException", "ResourceNotFoundException"), weights
