"""template.yaml against limits AWS enforces at deploy or run time (issue 9, items 2, 5, 10, 11, 13)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine, TemplateError
from redis_migration_ops.local_engine.iam.resources import Check
from redis_migration_ops.local_engine.template import TemplateResolver, load_template, resolve_template
from redis_migration_ops.rehearsal.migration import REPO_ROOT, build_local_account, stack_parameters
from tests.conftest import TEMPLATE_PATH

REQUIRED = {
    "InstanceId": "i-0123456789abcdef0",
    "ElastiCacheEndpoint": "old.cache.amazonaws.com",
    "VpcId": "vpc-1",
    "VpcSubnetIds": "subnet-1",
    "VpcSecurityGroupIds": "sg-1",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def _resolver(template: dict[str, Any], **parameters: str) -> TemplateResolver:
    return TemplateResolver(
        template,
        TEMPLATE_PATH.parent,
        {**REQUIRED, **parameters},
        stack_name="redis-migration-dev",
        region="us-east-1",
        account_id="123456789012",
    )


# -- item 2: alarms can notify ------------------------------------------------------------------


def test_the_topic_key_lets_cloudwatch_alarms_and_eventbridge_publish(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    key_ref = resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"]
    # Not the AWS managed alias/aws/sns, whose policy cannot grant cloudwatch.amazonaws.com
    assert key_ref == {"Ref": "NotificationKey"}
    key = resources["NotificationKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = _resolver(template).resolve(key["Properties"]["KeyPolicy"])["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    assert {p for s in services for p in s["Principal"]["Service"]} == {
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
    }
    assert all({"kms:Decrypt", "kms:GenerateDataKey*"} <= set(s["Action"]) for s in services)
    # And the account's IAM policies decide for the state machine's role
    assert {"AWS": "arn:aws:iam::123456789012:root"} in [s["Principal"] for s in statements]


# -- item 5: deployable on a new account ----------------------------------------------------------


def test_the_health_functions_reserved_concurrency_is_off_unless_asked(template: dict[str, Any]) -> None:
    props = template["Resources"]["RedisHealthFunction"]["Properties"]
    reserved = props["ReservedConcurrentExecutions"]
    assert _resolver(template).resolve({"R": reserved}) == {}
    assert _resolver(template, ReserveHealthCheckConcurrency="true").resolve({"R": reserved}) == {"R": 1}


# -- item 10: names within their limits -----------------------------------------------------------

# (where the name is, its limit) - from each resource type's CloudFormation reference.
NAME_LIMITS: list[tuple[tuple[str, ...], int]] = [
    (("MigrationStateMachine", "Properties", "Name"), 80),
    (("RedisHealthFunction", "Properties", "Events", "HealthSchedule", "Properties", "Name"), 64),
    (("BackupRedisFunction", "Properties", "Events", "BackupSchedule", "Properties", "Name"), 64),
    (("NotificationTopic", "Properties", "TopicName"), 256),
    (("SharedLayer", "Properties", "LayerName"), 140),
    (("RedisDashboard", "Properties", "DashboardName"), 255),
    (("MigrationLogGroup", "Properties", "LogGroupName"), 512),
]


def _at(template: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = template["Resources"]
    for key in path:
        value = value[key]
    return value


def test_every_name_fits_its_limit_with_the_longest_allowed_project_and_environment(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    longest = {
        name: "a" + "b" * (int(parameters[name]["MaxLength"]) - 1) for name in ("ProjectName", "Environment")
    }
    resolver = _resolver(template, **longest)
    names = [(path, resolver.resolve(_at(template, path)), limit) for path, limit in NAME_LIMITS]
    names += [
        ((name, "AlarmName"), resolver.resolve(resource["Properties"]["AlarmName"]), 255)
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    too_long = [(path, len(value), limit) for path, value, limit in names if len(value) > limit]
    assert too_long == []
    # And the schedule names are exactly at their limit: MaxLength is no tighter than needed
    assert max(len(value) for path, value, limit in names if limit == 64) == 64


def test_longer_names_are_refused_at_deploy(template: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="Environment"):
        resolve_template(
            TEMPLATE_PATH,
            {**REQUIRED, "Environment": "e" * 19},
            stack_name="s",
            region="us-east-1",
            account_id="123456789012",
        )


# -- item 11: the install timeout AWS-RunShellScript accepts -------------------------------------


def test_the_install_timeout_is_at_most_what_aws_run_shell_script_accepts(template: dict[str, Any]) -> None:
    assert template["Parameters"]["InstallTimeoutSeconds"]["MaxValue"] == 172800
    with pytest.raises(TemplateError, match="MaxValue"):
        resolve_template(
            TEMPLATE_PATH,
            {**REQUIRED, "InstallTimeoutSeconds": "172801"},
            stack_name="s",
            region="us-east-1",
            account_id="123456789012",
        )


# -- item 13: the functions the migration may switch ----------------------------------------------


@pytest.fixture
def deployed(request: pytest.FixtureRequest) -> Iterator[LocalEngine]:
    """The real template deployed on a local account, with the client-function pattern given."""
    with LocalEngine(REPO_ROOT) as engine:
        account = build_local_account(engine, 1)
        engine.deploy({**stack_parameters(account), "ClientFunctionNamePattern": request.param})
        yield engine


def _update(engine: LocalEngine, logical_id: str, function_name: str) -> bool:
    arn = f"arn:aws:lambda:us-east-1:{engine.account_id}:function:{function_name}"
    return engine.evaluate_iam(logical_id, Check("lambda:UpdateFunctionConfiguration", arn)).allowed


@pytest.mark.parametrize("deployed", ["campaign-*"], indirect=True)
def test_the_switching_functions_may_touch_only_the_functions_of_the_pattern(deployed: LocalEngine) -> None:
    for logical_id in ("CutOverFunctionFunction", "RestoreFunctionFunction"):
        assert _update(deployed, logical_id, "campaign-worker-001")
        assert not _update(deployed, logical_id, "analytics-cache-user")


@pytest.mark.parametrize("deployed", ["*"], indirect=True)
def test_the_stacks_own_functions_are_never_switched_whatever_the_pattern(deployed: LocalEngine) -> None:
    own = deployed.stack.function_names["ProbeRedisFunction"]
    assert _update(deployed, "CutOverFunctionFunction", "campaign-worker-001")
    decision = deployed.evaluate_iam(
        "CutOverFunctionFunction",
        Check(
            "lambda:UpdateFunctionConfiguration",
            f"arn:aws:lambda:us-east-1:{deployed.account_id}:function:{own}",
        ),
    )
    assert (decision.allowed, decision.explicit_deny) == (False, True)
