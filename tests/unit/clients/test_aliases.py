"""Cutover and restore of an alias-invoked function on the local engine's Lambda (versions as AWS does)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.errors import FunctionChangedConcurrently
from redis_migration.models import AliasPlan, FunctionChange
from redis_migration.steps.cut_over_function import cut_over_function, restore_function

from redis_migration_ops.local_engine import LocalEngine
from tests.unit.local_engine.conftest import FIXTURES

OLD_HOST = "old.cache.amazonaws.com"
OLD: dict[str, str | None] = {"REDIS_HOST": OLD_HOST, "REDIS_PORT": "6379", "REDIS_PASSWORD_SECRET_ARN": None}
NEW: dict[str, str | None] = {
    "REDIS_HOST": "10.0.0.5",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD_SECRET_ARN": "arn:secret",
}


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


@pytest.fixture
def aws() -> Iterator[AwsClients]:
    """Function `worker` on the old Redis, version 1 published from it, alias `live` on version 1."""
    with LocalEngine(FIXTURES) as engine:
        role = engine.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]
        lambda_ = engine.client("lambda")
        lambda_.create_function(
            FunctionName="worker",
            Runtime="python3.13",
            Role=role["Arn"],
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {"REDIS_HOST": OLD_HOST, "REDIS_PORT": "6379", "OWN": "x"}},
        )
        lambda_.publish_version(FunctionName="worker")
        lambda_.create_alias(FunctionName="worker", Name="live", FunctionVersion="1")
        yield AwsClients(factory=engine.client)


def _change() -> FunctionChange:
    return FunctionChange(
        function_name="worker", before=OLD, target=NEW, aliases=[AliasPlan(name="live", version="1")]
    )


def _served(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    version = aws.lambda_.get_alias(FunctionName="worker", Name="live")["FunctionVersion"]
    config = aws.lambda_.get_function_configuration(FunctionName="worker", Qualifier=version)
    return version, config["Environment"]["Variables"]


def test_cutover_publishes_once_and_moves_the_alias_and_a_retry_changes_nothing(aws: AwsClients) -> None:
    first = cut_over_function(_change(), aws)
    version, variables = _served(aws)
    assert [(m.from_version, m.to_version, m.moved) for m in first.aliases] == [("1", version, True)]
    assert variables == {
        "REDIS_HOST": "10.0.0.5",
        "REDIS_PORT": "6379",
        "REDIS_PASSWORD_SECRET_ARN": "arn:secret",
        "OWN": "x",
    }
    # A retried cutover finds everything done: no new version, the alias where it is
    again = cut_over_function(_change(), aws)
    assert not again.changed
    assert [(m.to_version, m.moved) for m in again.aliases] == [(version, False)]
    versions = aws.lambda_.list_versions_by_function(FunctionName="worker")["Versions"]
    assert sorted(v["Version"] for v in versions) == ["$LATEST", "1", version]


def test_restore_moves_the_alias_back_exactly_and_is_idempotent(aws: AwsClients) -> None:
    cut_over_function(_change(), aws)
    restored = restore_function(_change(), aws)
    assert restored.outcome == "restored"
    assert _served(aws)[0] == "1"
    assert restore_function(_change(), aws).outcome == "unchanged"


def test_an_alias_someone_else_moved_is_neither_moved_forward_nor_back(aws: AwsClients) -> None:
    # Given someone publishes their own version 2 (still the old Redis) and moves the alias to it
    aws.lambda_.update_function_configuration(
        FunctionName="worker",
        Environment={"Variables": {"REDIS_HOST": OLD_HOST, "REDIS_PORT": "6379"}},
    )
    aws.lambda_.get_waiter("function_updated_v2").wait(FunctionName="worker")
    aws.lambda_.publish_version(FunctionName="worker")
    aws.lambda_.update_alias(FunctionName="worker", Name="live", FunctionVersion="2")
    # Then the cutover refuses before writing anything (it no longer serves the planned version)
    with pytest.raises(FunctionChangedConcurrently, match="alias live serves version 2, not version 1"):
        cut_over_function(_change(), aws)
    latest = aws.lambda_.get_function_configuration(FunctionName="worker")["Environment"]["Variables"]
    assert latest["REDIS_HOST"] == OLD_HOST
    # And the restore leaves the alias where they put it, and says so
    restored = restore_function(_change(), aws)
    assert restored.outcome == "changedByOthers"
    assert "alias live serves version 2" in restored.detail
    assert _served(aws)[0] == "2"
