"""The real workflow under IAM enforcement: what it relies on, and that each grant is needed.

One real rehearsal (and one that rolls back) records every call the handlers and the state
machine make, with the statement of template.yaml that allowed it. Then, cheaply, each statement
relied on is removed in turn and the recorded calls are evaluated again: at least one must be
denied, with a message naming the action and the resource. Two full runs with a statement removed
from a copy of template.yaml show the denial end to end, in the execution history.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_migration.host.install import parse_install_result

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.elasticache.endpoint import start_elasticache_endpoint
from redis_migration_ops.local_engine.iam.enforcement import EvaluatedCall, decide, denial_message
from redis_migration_ops.local_engine.iam.resources import World
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.local_engine.ssm.run_command import PLUGIN_OUTPUT_LIMIT, STDOUT_LIMIT
from redis_migration_ops.local_engine.template import load_template
from redis_migration_ops.rehearsal.migration import (
    REPO_ROOT,
    build_local_account,
    local_setup,
    stack_parameters,
)


@dataclass
class Rehearsed:
    """What a recorded run left: every evaluated call, the denials with each statement removed,
    and the install command's output as SSM returns it."""

    calls: list[EvaluatedCall]
    denials_without: dict[tuple[str, str], list[str]]
    install_output: str
    install_plugin_output: str


def denials_without_each_statement(
    engine: LocalEngine, calls: list[EvaluatedCall]
) -> dict[tuple[str, str], list[str]]:
    """For each (principal, statement) the calls relied on: the denials of those calls without it.

    Evaluated while the engine runs (KMS checks read the key policy from moto).
    """
    world = World(engine.account_id, engine.region)
    outcome: dict[tuple[str, str], list[str]] = {}
    for principal_name, label in sorted({(call.principal, str(call.statement)) for call in calls}):
        principal = engine.principal(principal_name)
        remaining = tuple(s for s in principal.statements if s.label != label)
        assert len(remaining) < len(principal.statements), label
        outcome[(principal_name, label)] = [
            denial_message(principal, call.check, decision, call.service)
            for call in calls
            if call.principal == principal_name
            and not (decision := decide(principal, call.check, world, remaining)).allowed
        ]
    return outcome


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory) -> list[Rehearsed]:
    """A migration that succeeds, and one whose VerifyCutover fails (so the rollback runs)."""
    results = []
    for fail_at in (None, "VerifyCutover"):
        with local_setup(tmp_path_factory.mktemp("iam-rehearsal"), 2) as setup:
            if fail_at:
                setup.engine.fail_at(fail_at)
            run = setup.run()
            expected = "SUCCEEDED" if fail_at is None else "FAILED"
            assert run.described["status"] == expected, run.described.get("cause")
            ssm = setup.engine.client("ssm")
            (command,) = [c for c in setup.engine.ssm_commands if INSTALL_MARK in c.parameters["commands"][0]]
            invocation = ssm.get_command_invocation(
                CommandId=command.command_id, InstanceId=command.instance_ids[0]
            )
            listed = ssm.list_command_invocations(CommandId=command.command_id, Details=True)
            calls = setup.engine.iam_calls
            results.append(
                Rehearsed(
                    calls,
                    denials_without_each_statement(setup.engine, calls),
                    invocation["StandardOutputContent"],
                    listed["CommandInvocations"][0]["CommandPlugins"][0]["Output"],
                )
            )
    return results


def test_the_rehearsal_made_only_allowed_calls_each_with_its_statement(rehearsed: list[Rehearsed]) -> None:
    calls = [call for run in rehearsed for call in run.calls]
    assert calls, "nothing was evaluated: is IAM enforcement on?"
    assert [call for call in calls if not call.allowed] == []
    assert all(call.statement for call in calls)
    # Both kinds of callers were evaluated: the functions' roles and the state machine's
    assert {"MigrationStateMachine", "CheckPreconditionsFunction", "CutOverFunctionFunction"} <= {
        call.principal for call in calls
    }
    assert "RestoreFunctionFunction" in {call.principal for call in rehearsed[1].calls}
    # And SNS used the topic's customer managed key on the state machine's behalf
    assert {(c.action, c.via) for c in calls if c.via == "sns"} == {
        ("kms:GenerateDataKey", "sns"),
        ("kms:Decrypt", "sns"),
    }


def test_removing_any_statement_the_rehearsal_relies_on_denies_a_call_naming_action_and_resource(
    rehearsed: list[Rehearsed],
) -> None:
    merged: dict[tuple[str, str], list[str]] = {}
    for run in rehearsed:
        for key, denials in run.denials_without.items():
            merged.setdefault(key, []).extend(denials)
    assert len(merged) >= 15
    # Every statement relied on is needed: without it, some call is denied...
    assert [key for key, denials in merged.items() if not denials] == [], "redundant grants"
    # ...with a message naming the action and the resource
    for denials in merged.values():
        assert re.search(r"is not authorized to perform: \S+:\S+ on resource: \S+", denials[0]), denials[0]


def test_the_install_commands_output_is_short_and_its_result_line_survives_ssms_rule(
    rehearsed: list[Rehearsed],
) -> None:
    for run in rehearsed:
        # What GetCommandInvocation returns is the whole output, far under SSM's 24,000
        assert len(run.install_output) < STDOUT_LIMIT // 4
        result = parse_install_result(run.install_output)
        assert result is not None
        assert result.ok
        # And the console's 2,500 characters (ListCommandInvocations) show the result line too
        assert len(run.install_plugin_output) <= PLUGIN_OUTPUT_LIMIT
        assert parse_install_result(run.install_plugin_output) is not None


# -- end to end, with a statement removed from a copy of template.yaml ------------------------------


# The install command carries its script in a here-document named after it.
INSTALL_MARK = "INSTALL_REDIS_SCRIPT"


def _without_statement(sid: str, directory: Path) -> Path:
    """A copy of the application (links to its code) whose template lacks the statement ``sid``."""
    template = load_template(REPO_ROOT / "template.yaml")
    removed = 0
    for resource in template["Resources"].values():
        for policy in (resource.get("Properties") or {}).get("Policies") or []:
            if isinstance(policy, dict) and "Statement" in policy:
                kept = [s for s in policy["Statement"] if s.get("Sid") != sid]
                removed += len(policy["Statement"]) - len(kept)
                policy["Statement"] = kept
    assert removed == 1, f"{sid} found {removed} times"
    for name in ("functions", "layers", "statemachine"):
        (directory / name).symlink_to(REPO_ROOT / name)
    copy = directory / "template.json"
    copy.write_text(json.dumps(template))
    return copy


def _run_without(sid: str, directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    template = _without_statement(sid, directory)
    with LocalEngine(directory, template_path=template) as engine:
        account = build_local_account(engine, 1)
        engine.deploy(stack_parameters(account))
        with (
            SandboxHost(directory / "host", account.private_ip) as sandbox,
            start_elasticache_endpoint(engine, account, directory / "elasticache"),
        ):
            engine.register_sandbox(account.instance_id, sandbox)
            arn = engine.start_execution(
                {"release": "iam", "removeKeys": [OLD_AUTH_KEY]}, name=f"without-{sid}"
            )
            described = engine.wait_for_execution(arn, timeout_s=120)
            # The host was only inspected (read-only): the denial came before any change to it
            installs = [c for c in engine.ssm_commands if INSTALL_MARK in c.parameters["commands"][0]]
            assert installs == [], "the run reached the install; it should have been denied before"
        return described, engine.history(arn)


def _failure_causes(history: list[dict[str, Any]]) -> str:
    return json.dumps([event for event in history if "Failed" in event["type"]], default=str)


@pytest.mark.parametrize(
    ("sid", "error", "action", "resource"),
    [
        (
            "ReadPasswordSecretMetadata",
            "AccessDeniedException",
            "secretsmanager:DescribeSecret",
            ":secret:campaign-system-redis-password-rehearsal ",
        ),
        (
            "AddRuleInThisVpcOnly",
            "UnauthorizedOperation",
            "ec2:AuthorizeSecurityGroupIngress",
            ":security-group/sg-",
        ),
    ],
)
def test_a_run_without_a_needed_statement_ends_with_access_denied_in_its_history(
    tmp_path: Path, sid: str, error: str, action: str, resource: str
) -> None:
    # When the workflow runs with the statement removed from the template
    described, history = _run_without(sid, tmp_path)
    # Then it failed, and its history holds the service's denial naming the action and resource
    assert described["status"] == "FAILED"
    causes = _failure_causes(history)
    assert error in causes
    assert f"is not authorized to perform: {action} on resource: arn:aws:" in causes
    assert resource in causes
