"""LambdaKmsEnvironment: variables under a customer managed key only for callers who may decrypt."""

import io
import zipfile
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.iam.caller_identity import Principal, acting_as
from redis_migration_ops.local_engine.iam.policy import parse_policy


def _zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return event\n")
    return archive.getvalue()


@pytest.fixture
def encrypted(engine: LocalEngine) -> str:
    """A function `encrypted-worker` whose variables are under a customer managed key; its key ARN."""
    key = engine.client("kms").create_key(Description="team key")["KeyMetadata"]["Arn"]
    role = engine.client("iam").create_role(RoleName="enc", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    engine.client("lambda").create_function(
        FunctionName="encrypted-worker",
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip()},
        KMSKeyArn=key,
        Environment={"Variables": {"REDIS_HOST": "old", "API_URL": "https://example.invalid"}},
    )
    return str(key)


READ_FUNCTIONS = {
    "Effect": "Allow",
    "Action": ["lambda:ListFunctions", "lambda:GetFunction", "lambda:GetFunctionConfiguration"],
    "Resource": "*",
}


def _principal(name: str, *statements: dict[str, Any]) -> Principal:
    """A role that may read functions, plus ``statements``."""
    parsed = parse_policy(name, {"Statement": [READ_FUNCTIONS, *statements]})
    return Principal(name, f"arn:aws:iam::123456789012:role/{name}", name, tuple(parsed))


def _reads(engine: LocalEngine) -> list[dict[str, Any]]:
    client = engine.client("lambda")
    listed = [f for f in client.list_functions()["Functions"] if f["FunctionName"] == "encrypted-worker"]
    return [
        client.get_function_configuration(FunctionName="encrypted-worker")["Environment"],
        client.get_function(FunctionName="encrypted-worker")["Configuration"]["Environment"],
        listed[0]["Environment"],
    ]


def test_calls_outside_any_handler_see_the_variables(engine: LocalEngine, encrypted: str) -> None:
    assert all(read.get("Variables", {}).get("REDIS_HOST") == "old" for read in _reads(engine))


def test_a_role_without_kms_decrypt_gets_environment_error_and_no_variables(
    engine: LocalEngine, encrypted: str
) -> None:
    # Given a role that may read functions but has no kms:Decrypt
    with acting_as(_principal("auditor")):
        reads = _reads(engine)
    # Then GetFunctionConfiguration, GetFunction and ListFunctions answer Environment.Error only
    for read in reads:
        assert "Variables" not in read
        assert read["Error"]["ErrorCode"] == "AccessDeniedException"
        assert "kms:Decrypt" in read["Error"]["Message"]
        assert encrypted in read["Error"]["Message"]
    # And the evaluation is recorded
    denied = [c for c in engine.iam_calls if c.action == "kms:Decrypt" and not c.allowed]
    assert {c.resource for c in denied} == {encrypted}


def test_a_role_allowed_to_decrypt_through_lambda_sees_the_variables(
    engine: LocalEngine, encrypted: str
) -> None:
    # Given a role whose policy allows kms:Decrypt on the key via Lambda (the key policy delegates to IAM)
    decrypt = {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": encrypted,
        "Condition": {"StringEquals": {"kms:ViaService": "lambda.us-east-1.amazonaws.com"}},
    }
    with acting_as(_principal("reader", decrypt)):
        reads = _reads(engine)
    # Then every read has the variables
    assert all(read["Variables"]["REDIS_HOST"] == "old" for read in reads)
