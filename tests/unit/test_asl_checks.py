"""The ASL file is checked by our own code: nothing in SAM or cfn-lint reads it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from redis_migration_ops.asl_checks import check_definition, check_substitutions, task_state_names
from redis_migration_ops.local_engine.template import load_template
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
