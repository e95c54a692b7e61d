"""The ASL file is checked by our own code: nothing in SAM or cfn-lint reads it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from redis_migration_ops.asl_checks import check_definition, check_substitutions, task_state_names
from redis_migration_ops.local_engine.template import load_template, resolve_template
from tests.conftest import ASL_PATH, TEMPLATE_PATH


def state_machine_properties() -> dict[str, Any]:
    resources = load_template(TEMPLATE_PATH)["Resources"]
    machines = [r for r in resources.values() if r["Type"] == "AWS::Serverless::StateMachine"]
    assert len(machines) == 1
    return dict(machines[0]["Properties"])


def substitutions() -> dict[str, Any]:
    return dict(state_machine_properties()["DefinitionSubstitutions"])


def test_the_real_asl_passes_every_check(asl_definition: dict[str, Any]) -> None:
    assert check_definition(asl_definition) == []


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used() -> None:
    assert check_substitutions(ASL_PATH.read_text(), substitutions()) == []


def test_the_template_deploys_the_file_the_tests_load() -> None:
    uri = state_machine_properties()["DefinitionUri"]
    assert (TEMPLATE_PATH.parent / uri).resolve() == ASL_PATH.resolve()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["States"]["CheckPreconditions"].update(Next="NoSuchState"), "does not exist"),
        (lambda d: d.update(StartAt="Nowhere"), "StartAt"),
        (lambda d: d["States"].update(Orphan={"Type": "Succeed"}), "Orphan: unreachable"),
        (lambda d: d["States"]["ProbeRedis"].pop("TimeoutSeconds"), "timeout"),
        (lambda d: d["States"]["ProbeRedis"]["Retry"][0]["ErrorEquals"].append("States.ALL"), "never retry"),
        (lambda d: d["States"]["IsDryRun"].pop("Default"), "Default"),
        (lambda d: d["States"].update(dryRunCheck=d["States"].pop("IsDryRun")), "PascalCase"),
        (lambda d: d.update(QueryLanguage="JSONPath"), "JSONata"),
        (lambda d: d["States"]["ProbeRedis"].update(Resource="arn:aws:states:::lambda:invoke"), "partition"),
    ],
    ids=[
        "dangling-next",
        "bad-start",
        "unreachable",
        "no-timeout",
        "retry-all",
        "no-default",
        "naming",
        "jsonpath",
        "partition",
    ],
)
def test_each_kind_of_mistake_is_caught(asl_definition: dict[str, Any], mutate: Any, expected: str) -> None:
    broken = copy.deepcopy(asl_definition)
    mutate(broken)

    problems = check_definition(broken)

    assert any(expected in problem for problem in problems), problems


def test_an_unknown_placeholder_is_caught() -> None:
    text = ASL_PATH.read_text().replace("${NotificationTopicArn}", "${NotificationTopicArm}", 1)

    problems = check_substitutions(text, substitutions())

    assert "placeholder ${NotificationTopicArm} has no DefinitionSubstitution" in problems


def test_task_states_include_those_inside_maps(asl_definition: dict[str, Any]) -> None:
    names = task_state_names(asl_definition)

    assert {"CutOverFunction", "RestoreFunction", "InstallRedis", "RevokeRedisIngress"} <= set(names)


def test_every_lambda_task_outlives_its_function() -> None:
    """A Task whose timeout is not above its function's ends while the function still runs: the
    workflow would then act (retry, roll back) beside a live invocation."""
    resolved = resolve_template(
        TEMPLATE_PATH,
        {
            "InstanceId": "i-0123456789abcdef0",
            "ElastiCacheEndpoint": "cache.example",
            "VpcId": "vpc-1",
            "VpcSubnetIds": "subnet-1",
            "VpcSecurityGroupIds": "sg-1",
        },
        stack_name="timeouts",
        region="us-east-1",
        account_id="123456789012",
    )
    timeouts = {spec.arn: spec.timeout for spec in resolved.functions}
    (machine,) = resolved.state_machines
    short = []

    def walk(scope: dict[str, Any]) -> None:
        for name, state in scope["States"].items():
            function = state.get("Arguments", {}).get("FunctionName") if state["Type"] == "Task" else None
            if function in timeouts and state["TimeoutSeconds"] <= timeouts[function]:
                short.append(f"{name}: task {state['TimeoutSeconds']} s, function {timeouts[function]} s")
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"])

    walk(json.loads(machine.definition))
    assert short == []
