"""InProcessLambda, LambdaRevisionId, LambdaEnvironmentSize, FunctionVpcId, and moto's native
duplicate-ingress refusal."""

import io
import json
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


def _invoke(engine: LocalEngine, name: str, payload: Any) -> tuple[str | None, Any]:
    response = engine.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_invoke_by_name_runs_the_real_handler(engine: LocalEngine) -> None:
    # When the check function is invoked by name through boto3
    error, payload = _invoke(
        engine,
        engine.stack.function_names["CheckFunction"],
        {"item": {"id": "a"}, "index": 0, "greeting": "hi"},
    )
    # Then the handler answered
    assert error is None
    assert payload == {"id": "a", "index": 0, "ok": True, "greeting": "hi"}


def test_a_handler_exception_is_an_unhandled_function_error(engine: LocalEngine) -> None:
    # When the check function raises its named error (invoked by ARN)
    error, payload = _invoke(
        engine,
        engine.stack.function_arns["CheckFunction"],
        {"item": {"id": "x", "fail": True}, "index": 0, "greeting": ""},
    )
    # Then Lambda's error shape comes back
    assert error == "Unhandled"
    assert payload == {
        "errorType": "PreconditionFailed",
        "errorMessage": "item x is not ready",
        "stackTrace": [],
    }


def test_functions_not_from_the_template_keep_moto_behaviour(engine: LocalEngine) -> None:
    # Given a function created at run time
    role = engine.client("iam").create_role(RoleName="client", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    engine.client("lambda").create_function(
        FunctionName="team-client",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
    )
    # When invoked, then moto echoes the payload
    assert _invoke(engine, "team-client", {"a": 1}) == (None, {"a": 1})


def test_functions_are_created_from_the_template_properties(engine: LocalEngine) -> None:
    configuration = engine.client("lambda").get_function_configuration(
        FunctionName=engine.stack.function_names["GreetFunction"]
    )
    assert configuration["Handler"] == "app.lambda_handler"
    assert configuration["Runtime"] == "python3.11"
    assert configuration["Timeout"] == 30
    assert configuration["MemorySize"] == 256
    assert configuration["Environment"]["Variables"]["PROJECT_NAME"] == "campaign"


def test_revision_id_is_enforced_and_changes_on_update(engine: LocalEngine) -> None:
    client = engine.client("lambda")
    name = engine.stack.function_names["GreetFunction"]
    # Given the current revision
    first = client.get_function_configuration(FunctionName=name)["RevisionId"]
    # When an update carries a stale revision, then Lambda's 412 comes back
    with pytest.raises(ClientError) as refused:
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {}}, RevisionId="stale"
        )
    assert refused.value.response["Error"]["Code"] == "PreconditionFailedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    # When it carries the current one, then it applies and the revision changes
    updated = client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"REDIS_HOST": "10.0.0.5"}}, RevisionId=first
    )
    assert updated["RevisionId"] != first
    client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 3}
    )
    current = client.get_function(FunctionName=name)["Configuration"]
    assert current["LastUpdateStatus"] == "Successful"
    assert current["RevisionId"] == updated["RevisionId"]
    # And the old revision is now refused
    with pytest.raises(ClientError, match="PreconditionFailedException"):
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {}}, RevisionId=first
        )


def test_environment_variables_over_4_kb_are_refused_as_lambda_counts_them(engine: LocalEngine) -> None:
    client = engine.client("lambda")
    name = engine.stack.function_names["GreetFunction"]
    before = client.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    # Given variables that are exactly 4,096 bytes as compact JSON ({"BIG":"x..."}: 10 bytes of JSON)
    exactly = {"BIG": "x" * (4096 - 10)}
    assert len(json.dumps(exactly, separators=(",", ":"))) == 4096
    # When written, then Lambda accepts them
    client.update_function_configuration(FunctionName=name, Environment={"Variables": exactly})
    # When one byte more is written
    with pytest.raises(ClientError) as refused:
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"BIG": "x" * (4096 - 9)}}
        )
    # Then Lambda's error and message come back, and nothing changed
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"].startswith(
        "Lambda was unable to configure your environment variables because the environment "
        'variables you have provided exceeded the 4KB limit. String measured: {"BIG":'
    )
    assert client.get_function_configuration(FunctionName=name)["Environment"]["Variables"] == exactly
    assert before != exactly
    # And a new function with too large an environment is not created
    role = engine.client("iam").create_role(RoleName="big", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    with pytest.raises(ClientError, match="exceeded the 4KB limit"):
        client.create_function(
            FunctionName="too-big",
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": {"A": "x" * 2100, "B": "y" * 2100}},
        )
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_function(FunctionName="too-big")


def test_function_vpc_id_is_the_vpc_of_its_subnets(engine: LocalEngine) -> None:
    ec2 = engine.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fn", Description="fn", VpcId=vpc)["GroupId"]
    role = engine.client("iam").create_role(RoleName="vpc-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    engine.client("lambda").create_function(
        FunctionName="vpc-fn",
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]},
    )
    configuration = engine.client("lambda").get_function_configuration(FunctionName="vpc-fn")
    assert configuration["VpcConfig"]["VpcId"] == vpc


def test_moto_refuses_duplicate_ingress(bare_engine: LocalEngine) -> None:
    # moto 5.2.5 already answers like AWS: no patch needed (this guards the pin)
    ec2 = bare_engine.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="redis", Description="redis", VpcId=vpc)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "10.2.0.0/16"}]}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
    with pytest.raises(ClientError) as refused:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
    assert refused.value.response["Error"]["Code"] == "InvalidPermission.Duplicate"
