"""Template reading: parameters, conditions, substitutions, outputs, the one-environment rule."""

import json
import shutil
from pathlib import Path

import pytest

from redis_migration_ops.local_engine import LocalEngine, TemplateError
from redis_migration_ops.local_engine.template import resolve_template, substitute_definition


def _resolve(template: Path, **parameters: str) -> object:
    return resolve_template(
        template, parameters, stack_name="s", region="eu-west-1", account_id="111122223333"
    )


def test_the_fixture_resolves_with_defaults_overridden(fixtures_dir: Path) -> None:
    resolved = resolve_template(
        fixtures_dir / "template.yaml",
        {"Environment": "prod"},
        stack_name="s",
        region="eu-west-1",
        account_id="1",
    )
    assert resolved.parameters == {"ProjectName": "demo", "Environment": "prod"}
    assert resolved.shared_environment() == {
        "PROJECT_NAME": "demo",
        "ENVIRONMENT": "prod",
        "TOPIC_ARN": "arn:aws:sns:eu-west-1:1:s-NotifyTopic",
        "LOG_LEVEL": "INFO",
    }
    definition = json.loads(resolved.state_machines[0].definition)
    greet = definition["States"]["GreetTeam"]["Arguments"]
    assert greet["FunctionName"] == "arn:aws:lambda:eu-west-1:1:function:s-GreetFunction"
    assert greet["Payload"]["parameter_prefix"] == "/demo/eu-west-1/1"
    assert resolved.outputs["TopicName"] == "s-NotifyTopic"
    assert [spec.code_dir for spec in resolved.functions] == [
        (fixtures_dir / "functions/greet").resolve(),
        (fixtures_dir / "functions/check").resolve(),
        (fixtures_dir / "functions/pad").resolve(),
        (fixtures_dir / "functions/check").resolve(),  # SlowFunction: the check handler, a 1 s timeout
    ]


def test_bad_parameters_are_refused(fixtures_dir: Path) -> None:
    with pytest.raises(TemplateError, match="not declared"):
        resolve_template(
            fixtures_dir / "template.yaml", {"Nope": "x"}, stack_name="s", region="r", account_id="1"
        )
    with pytest.raises(TemplateError, match="is not one of"):
        resolve_template(
            fixtures_dir / "template.yaml", {"Environment": "qa"}, stack_name="s", region="r", account_id="1"
        )


def test_a_placeholder_without_substitution_is_refused() -> None:
    with pytest.raises(TemplateError, match="MissingArn"):
        substitute_definition('{"Resource": "${MissingArn}"}', {}, "Machine")
    assert substitute_definition('{"A": "${Quote}"}', {"Quote": 'a"b'}, "Machine") == '{"A": "a\\"b"}'


def test_functions_with_different_environments_are_refused(fixtures_dir: Path, tmp_path: Path) -> None:
    # Given a copy of the fixture where one function adds its own variable
    copy = tmp_path / "app"
    shutil.copytree(fixtures_dir, copy)
    template = copy / "template.yaml"
    text = template.read_text()
    text = text.replace(
        "      CodeUri: functions/check/\n",
        "      CodeUri: functions/check/\n      Environment:\n        Variables:\n          ONLY_HERE: x\n",
    )
    template.write_text(text)
    # When deployed, then the one-environment rule fails loudly
    with LocalEngine(copy) as running, pytest.raises(TemplateError, match="ONLY_HERE"):
        running.deploy()
