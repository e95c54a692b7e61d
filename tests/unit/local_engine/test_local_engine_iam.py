"""IamEnforcement: the evaluator, the resource ARNs AWS evaluates, identities, errors, threads."""

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from redis_migration_ops.local_engine import LocalEngine, LocalEngineError
from redis_migration_ops.local_engine.iam.caller_identity import Principal, acting_as
from redis_migration_ops.local_engine.iam.policy import UnsupportedPolicy, evaluate, parse_policy
from redis_migration_ops.local_engine.iam.resources import World, checks_for
from redis_migration_ops.local_engine.template import (
    FunctionSpec,
    StateMachineSpec,
    TemplateResolver,
    load_template,
    resolve_template,
)

REPO = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"


def _statements(*statements: dict[str, Any]) -> list[Any]:
    return parse_policy("test", {"Statement": list(statements)})


def _principal(name: str, *statements: dict[str, Any]) -> Principal:
    return Principal(name, f"arn:aws:iam::{ACCOUNT}:role/{name}", name, tuple(_statements(*statements)))


# -- the evaluator --------------------------------------------------------------------------------


def test_an_allow_matches_action_case_insensitively_and_resource_with_wildcards() -> None:
    policy = _statements(
        {"Effect": "Allow", "Action": "SecretsManager:Describe*", "Resource": "arn:aws:sm:::s:a-*"}
    )
    assert evaluate(policy, "secretsmanager:DescribeSecret", "arn:aws:sm:::s:a-b").allowed
    assert not evaluate(policy, "secretsmanager:DescribeSecret", "arn:aws:sm:::s:A-b").allowed
    assert not evaluate(policy, "secretsmanager:GetSecretValue", "arn:aws:sm:::s:a-b").allowed


def test_an_explicit_deny_wins_and_is_reported_as_such() -> None:
    policy = _statements(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoSecrets", "Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"},
    )
    decision = evaluate(policy, "secretsmanager:GetSecretValue", "arn:x")
    assert (decision.allowed, decision.explicit_deny) == (False, True)
    assert decision.statement is not None
    assert decision.statement.label == "test/NoSecrets"


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        (
            {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
            {"kms:ViaService": ["sns.us-east-1.amazonaws.com"]},
            True,
        ),
        ({"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}, {}, False),
        ({"StringLike": {"s3:prefix": "backups/*"}}, {"s3:prefix": ["backups/x"]}, True),
        ({"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}, {}, True),
        (
            {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:1:vpc/vpc-a"}},
            {"ec2:Vpc": ["arn:aws:ec2:us-east-1:1:vpc/vpc-b"]},
            False,
        ),
        (
            {"ArnLike": {"ec2:Vpc": "arn:aws:ec2:*:1:vpc/vpc-*"}},
            {"ec2:Vpc": ["arn:aws:ec2:us-east-1:1:vpc/vpc-a"]},
            True,
        ),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": ["true"]}, False),
        ({"Null": {"ec2:Vpc": "true"}}, {}, True),
        ({"StringEqualsIfExists": {"ec2:Vpc": "x"}}, {}, True),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, list[str]], allowed: bool) -> None:
    policy = _statements({"Effect": "Allow", "Action": "a:b", "Resource": "*", "Condition": condition})
    assert evaluate(policy, "a:b", "r", context).allowed is allowed


def test_what_is_not_modelled_is_refused_loudly() -> None:
    with pytest.raises(UnsupportedPolicy, match="DateGreaterThan"):
        _statements(
            {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThan": {"a": "b"}}}
        )
    with pytest.raises(UnsupportedPolicy, match="policy variables"):
        _statements({"Effect": "Allow", "Action": "*", "Resource": "arn:${aws:username}"})


# -- the resources AWS evaluates ------------------------------------------------------------------


def test_a_secret_is_evaluated_without_suffix_before_it_exists_and_with_it_after(
    bare_engine: LocalEngine,
) -> None:
    world = World(ACCOUNT, "us-east-1")
    # Before: the ARN without the random suffix, which <name>* matches and <name>-* does not
    (before,) = checks_for("secretsmanager", "DescribeSecret", {"SecretId": "app-redis-password-dev"}, world)
    assert before.resource == f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-redis-password-dev"
    star = _statements(
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "arn:*:secret:app-redis-password-dev*"}
    )
    dash = _statements(
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "arn:*:secret:app-redis-password-dev-*"}
    )
    assert evaluate(star, before.action, before.resource).allowed
    assert not evaluate(dash, before.action, before.resource).allowed
    # After: the full ARN of the secret
    arn = bare_engine.client("secretsmanager").create_secret(
        Name="app-redis-password-dev", SecretString="{}"
    )["ARN"]
    (after,) = checks_for("secretsmanager", "DescribeSecret", {"SecretId": "app-redis-password-dev"}, world)
    assert after.resource == arn
    assert evaluate(dash, after.action, after.resource).allowed


def test_send_command_needs_the_document_and_every_instance() -> None:
    checks = checks_for(
        "ssm",
        "SendCommand",
        {"DocumentName": "AWS-RunShellScript", "InstanceIds": ["i-1", "i-2"]},
        World(ACCOUNT, "eu-west-1"),
    )
    assert [c.resource for c in checks] == [
        "arn:aws:ssm:eu-west-1::document/AWS-RunShellScript",
        f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-1",
        f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-2",
    ]


def test_lambda_calls_with_a_qualifier_are_evaluated_on_the_qualified_arn() -> None:
    world = World(ACCOUNT, "us-east-1")
    base = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:worker"
    assert (
        checks_for("lambda", "Invoke", {"FunctionName": "worker:live"}, world)[0].resource == f"{base}:live"
    )
    (check,) = checks_for(
        "lambda", "GetFunctionConfiguration", {"FunctionName": "worker", "Qualifier": "3"}, world
    )
    assert (check.action, check.resource) == ("lambda:GetFunctionConfiguration", f"{base}:3")
    assert (
        checks_for("lambda", "UpdateAlias", {"FunctionName": base, "Name": "live"}, world)[0].resource
        == f"{base}:live"
    )
    assert (
        checks_for("lambda", "Invoke", {"FunctionName": "worker"}, world)[0].action == "lambda:InvokeFunction"
    )


# -- enforcement on calls -------------------------------------------------------------------------


def test_a_handler_call_its_role_does_not_allow_fails_naming_action_and_resource(engine: LocalEngine) -> None:
    # Given the greet function, allowed to write /campaign/* parameters only
    lambda_ = engine.client("lambda")
    name = engine.stack.function_names["GreetFunction"]
    # When it is asked to write elsewhere
    response = lambda_.invoke(
        FunctionName=name, Payload=json.dumps({"name": "x", "parameter_prefix": "/other"})
    )
    error = json.loads(response["Payload"].read())
    # Then its boto3 call was denied as AWS would, naming the caller, action and resource
    assert response["FunctionError"] == "Unhandled"
    assert "AccessDeniedException" in error["errorMessage"]
    assert (
        f"assumed-role/redis-migration-local-GreetFunctionRole/{name} is not authorized to perform: "
        f"ssm:PutParameter on resource: arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/other/greeting"
    ) in error["errorMessage"]
    # And inside its prefix it is allowed, by the statement recorded with the call
    lambda_.invoke(FunctionName=name, Payload=json.dumps({"name": "x", "parameter_prefix": "/campaign/a"}))
    calls = [c for c in engine.iam_calls if c.principal == "GreetFunction"]
    assert [(c.allowed, c.statement) for c in calls] == [
        (False, None),
        (True, "GreetFunctionRolePolicy0/RecordTheGreeting"),
    ]


def test_the_state_machine_role_is_evaluated_for_its_integrations(engine: LocalEngine) -> None:
    arn = engine.start_execution({"name": "Ana", "items": [{"id": "a"}]}, "iam-run")
    assert engine.wait_for_execution(arn, timeout_s=20)["status"] == "SUCCEEDED"
    invokes = [c for c in engine.iam_calls if c.principal == "WorkflowStateMachine"]
    assert {c.action for c in invokes} == {"lambda:InvokeFunction"}
    assert all(c.allowed and "LambdaInvokePolicy" in str(c.statement) for c in invokes)


def test_calls_outside_any_handler_are_trusted_and_not_recorded(engine: LocalEngine) -> None:
    engine.client("ssm").put_parameter(Name="/anything", Value="v", Type="String")
    assert engine.iam_calls == []


def test_ec2_denial_is_unauthorized_operation_and_ec2_vpc_is_the_groups_vpc(bare_engine: LocalEngine) -> None:
    ec2 = bare_engine.client("ec2")
    vpcs = [ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"] for n in (1, 2)]
    groups = [
        ec2.create_security_group(GroupName=f"g{n}", Description="g", VpcId=v)["GroupId"]
        for n, v in enumerate(vpcs)
    ]
    role = _principal(
        "ingress",
        {
            "Effect": "Allow",
            "Action": "ec2:AuthorizeSecurityGroupIngress",
            "Resource": f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/*",
            "Condition": {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{vpcs[0]}"}},
        },
    )
    rule = [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    with acting_as(role):
        ec2.authorize_security_group_ingress(GroupId=groups[0], IpPermissions=rule)
        with pytest.raises(ClientError) as refused:
            ec2.authorize_security_group_ingress(GroupId=groups[1], IpPermissions=rule)
    assert refused.value.response["Error"]["Code"] == "UnauthorizedOperation"
    group_arn = f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/{groups[1]}"
    message = refused.value.response["Error"]["Message"]
    assert f"ec2:AuthorizeSecurityGroupIngress on resource: {group_arn}" in message


def test_sns_publish_to_a_topic_under_a_customer_key_needs_the_key(bare_engine: LocalEngine) -> None:
    key = bare_engine.client("kms").create_key()["KeyMetadata"]["Arn"]
    topic = bare_engine.client("sns").create_topic(Name="t", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    publish = {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}
    use_key = {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": key,
        "Condition": {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
    }
    sns = bare_engine.client("sns")
    with acting_as(_principal("publisher", publish)), pytest.raises(ClientError) as refused:
        sns.publish(TopicArn=topic, Message="m")
    assert refused.value.response["Error"]["Code"] == "KMSAccessDenied"
    assert f"kms:GenerateDataKey on resource: {key}" in refused.value.response["Error"]["Message"]
    with acting_as(_principal("publisher", publish, use_key)):
        assert sns.publish(TopicArn=topic, Message="m")["MessageId"]


def test_a_secret_under_a_customer_key_needs_kms_decrypt_through_secrets_manager(
    bare_engine: LocalEngine,
) -> None:
    # Given a secret encrypted with a customer managed key, and one under aws/secretsmanager
    secrets = bare_engine.client("secretsmanager")
    key = bare_engine.client("kms").create_key()["KeyMetadata"]["Arn"]
    token = secrets.create_secret(Name="cache-token", SecretString="t", KmsKeyId=key)["ARN"]
    plain = secrets.create_secret(Name="plain", SecretString="p")["ARN"]
    read = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [token, plain]}
    # When a role that may only read the secrets asks for them
    with acting_as(_principal("reader", read)):
        assert secrets.get_secret_value(SecretId=plain)["SecretString"] == "p"
        with pytest.raises(ClientError) as refused:
            secrets.get_secret_value(SecretId=token)
    # Then the one under the customer key is refused as Secrets Manager does, naming the key
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    message = refused.value.response["Error"]["Message"]
    assert message.startswith("Access to KMS is not allowed")
    assert f"kms:Decrypt on resource: {key}" in message
    # And kms:Decrypt through Secrets Manager, for that secret only (its ARN in the context), reads it
    through = {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",
        "Condition": {
            "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:SecretARN": f"{token.rsplit('-', 1)[0]}-??????"},
        },
    }
    with acting_as(_principal("reader", read, through)):
        assert secrets.get_secret_value(SecretId=token)["SecretString"] == "t"
    other = dict(through, Condition={"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}})
    with acting_as(_principal("reader", read, other)), pytest.raises(ClientError):
        secrets.get_secret_value(SecretId=token)


def test_threads_started_by_a_caller_call_as_that_caller(engine: LocalEngine) -> None:
    ssm = engine.client("ssm")
    denied: list[str] = []

    def write() -> None:
        try:
            ssm.put_parameter(Name="/other/x", Value="v", Type="String", Overwrite=True)
        except ClientError as error:
            denied.append(error.response["Error"]["Code"])

    with acting_as(engine.principal("GreetFunction")):
        worker = threading.Thread(target=write)
        worker.start()
        worker.join(10)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(write).result(10)
    # And a pool thread reused by a trusted caller is trusted again
    with ThreadPoolExecutor(max_workers=1) as pool:
        with acting_as(engine.principal("GreetFunction")):
            pool.submit(write).result(10)
        pool.submit(write).result(10)
    assert denied == ["AccessDeniedException"] * 3


def test_an_operation_without_a_resource_rule_fails_loudly(engine: LocalEngine) -> None:
    with acting_as(engine.principal("GreetFunction")), pytest.raises(LocalEngineError, match="ec2:CreateVpc"):
        engine.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")


# -- the roles are those SAM creates --------------------------------------------------------------

SAM_PYTHON = REPO / ".venv-sam" / "bin" / "python"
_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class NoIam:
    def load(self):
        raise RuntimeError("the transform asked IAM for a managed policy")
template = yaml_parse(open(sys.argv[1]).read())
for logical_id, resource in template["Resources"].items():
    for key in ("CodeUri", "DefinitionUri", "ContentUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = f"s3://local/{logical_id}"
out = transform(template, {"AWS::Region": "us-east-1"}, NoIam())
roles = {k: v["Properties"] for k, v in out["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
keep = ("ManagedPolicyArns", "Policies")
print(json.dumps({k: {key: v.get(key, []) for key in keep} for k, v in roles.items()}))
"""


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="the SAM CLI's environment (.venv-sam) is not set up")
def test_the_engines_role_policies_equal_what_sam_creates_for_the_real_template() -> None:
    # Given what samtranslator (the transform `sam deploy` runs) makes of template.yaml
    parameters = {
        "InstanceId": "i-0123456789abcdef0",
        "ElastiCacheEndpoint": "old.cache.amazonaws.com",
        "VpcId": "vpc-1",
        "VpcSubnetIds": "subnet-1",
        "VpcSecurityGroupIds": "sg-1",
    }
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSFORM, str(REPO / "template.yaml")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    sam_roles = json.loads(done.stdout)
    resolved = resolve_template(
        REPO / "template.yaml", parameters, stack_name="s", region="us-east-1", account_id=ACCOUNT
    )
    resolver = TemplateResolver(
        load_template(REPO / "template.yaml"),
        REPO,
        parameters,
        stack_name="s",
        region="us-east-1",
        account_id=ACCOUNT,
    )
    # Then each function's and state machine's role has the same statements and managed policies
    owners: list[FunctionSpec | StateMachineSpec] = [*resolved.functions, *resolved.state_machines]
    for spec in owners:
        sam = sam_roles[f"{spec.logical_id}Role"]
        # A conditional policy stays an Fn::If in SAM's output: decided here as the engine does.
        decided = [resolver.resolve(policy) for policy in sam["Policies"]]
        sam_documents = [policy["PolicyDocument"] for policy in decided if policy is not None]
        ours_managed = [p.name for p in spec.policies if p.name.startswith("arn:aws:iam::aws:policy/")]
        ours_documents = [
            p.document for p in spec.policies if not p.name.startswith("arn:aws:iam::aws:policy/")
        ]
        assert ours_managed == sam["ManagedPolicyArns"], spec.logical_id
        assert ours_documents == sam_documents, spec.logical_id
