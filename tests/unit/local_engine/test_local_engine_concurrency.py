"""LambdaProvisionedConcurrency: provisioned concurrency on versions and aliases, and the reserved
concurrency it forbids (a function with provisioned concurrency cannot be frozen at 0)."""

from __future__ import annotations

import io
import zipfile

import pytest
from botocore.exceptions import ClientError

from redis_migration_ops.local_engine import LocalEngine


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def test_provisioned_concurrency_forbids_a_lower_reserved_concurrency(bare_engine: LocalEngine) -> None:
    lambda_ = bare_engine.client("lambda")
    role = bare_engine.client("iam").create_role(RoleName="dialer", AssumeRolePolicyDocument="{}")
    lambda_.create_function(
        FunctionName="dialer",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": _zip()},
    )
    version = lambda_.publish_version(FunctionName="dialer")["Version"]
    lambda_.create_alias(FunctionName="dialer", Name="live", FunctionVersion=version)
    assert (
        lambda_.list_provisioned_concurrency_configs(FunctionName="dialer")["ProvisionedConcurrencyConfigs"]
        == []
    )

    # Given 2 provisioned on the alias (never on $LATEST)
    with pytest.raises(ClientError) as refused:
        lambda_.put_provisioned_concurrency_config(
            FunctionName="dialer", Qualifier="$LATEST", ProvisionedConcurrentExecutions=2
        )
    assert error_of(refused) == (
        "InvalidParameterValueException",
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
    )
    lambda_.put_provisioned_concurrency_config(
        FunctionName="dialer", Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    listed = lambda_.list_provisioned_concurrency_configs(FunctionName="dialer")[
        "ProvisionedConcurrencyConfigs"
    ]
    assert [
        (c["FunctionArn"].rsplit(":", 2)[-2:], c["RequestedProvisionedConcurrentExecutions"]) for c in listed
    ] == [(["dialer", "live"], 2)]

    # When the function is frozen (reserved concurrency 0), then Lambda refuses, in its own words
    with pytest.raises(ClientError) as refused:
        lambda_.put_function_concurrency(FunctionName="dialer", ReservedConcurrentExecutions=0)
    assert error_of(refused) == (
        "InvalidParameterValueException",
        " ReservedConcurrentExecutions  0 should not be lower than function's total provisioned "
        "concurrency [2].",
    )
    assert "ReservedConcurrentExecutions" not in lambda_.get_function_concurrency(FunctionName="dialer")
    # ... and a reservation of at least 2 is accepted; more provisioned than reserved is not
    lambda_.put_function_concurrency(FunctionName="dialer", ReservedConcurrentExecutions=2)
    with pytest.raises(ClientError) as refused:
        lambda_.put_provisioned_concurrency_config(
            FunctionName="dialer", Qualifier=version, ProvisionedConcurrentExecutions=1
        )
    assert error_of(refused)[1] == (
        "Requested Provisioned Concurrency should not be greater than the "
        "reservedConcurrentExecution for function"
    )

    # When the provisioned concurrency is removed, then the function can be frozen
    lambda_.delete_provisioned_concurrency_config(FunctionName="dialer", Qualifier="live")
    lambda_.put_function_concurrency(FunctionName="dialer", ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as refused:
        lambda_.get_provisioned_concurrency_config(FunctionName="dialer", Qualifier="live")
    assert error_of(refused)[0] == "ProvisionedConcurrencyConfigNotFoundException"
