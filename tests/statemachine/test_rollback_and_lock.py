"""The promises outside the happy path: one migration per stack, and a rollback that trusts only
Step Functions' own record and means "back on ElastiCache".

Each test reproduces a way today's users broke these promises (issue 8, points 3 to 5).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from redis_migration_ops.account.description import ELASTICACHE_ENDPOINT
from redis_migration_ops.operations import exit_code_of
from redis_migration_ops.rehearsal.migration import LocalSetup
from tests.statemachine.conftest import approval_token, back_on_elasticache, differences

REFUSED_AT_ONCE = ["IsRollbackRequested", "PrepareRollback", "InputRejected"]


def wait_until_entered(setup: LocalSetup, execution_arn: str, state: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while state not in [
        e.get("stateEnteredEventDetails", {}).get("name") for e in setup.engine.history(execution_arn)
    ]:
        assert time.monotonic() < deadline, f"never reached {state}"
        time.sleep(0.1)


def secrets(setup: LocalSetup) -> list[str]:
    return sorted(s["Name"] for s in setup.engine.client("secretsmanager").list_secrets()["SecretList"])


def test_a_run_for_another_environment_on_this_stack_is_refused_while_one_waits(setup: LocalSetup) -> None:
    # Given run A waiting for approval
    waiting = setup.engine.start_execution({"requireApproval": True, "release": "a"}, name="run-a")
    wait_until_entered(setup, waiting, "WaitForApproval")
    before, secrets_before = setup.snapshot(), secrets(setup)

    # When run C names another environment (and so would create a second secret)
    run_c = setup.run({"environment": "staging"}, name="run-c")

    # Then it is refused before anything, naming the field; no second secret, nothing changed
    assert run_c.described["error"] == "InvalidInput"
    assert "environment: 'staging' is not this stack's 'rehearsal'" in run_c.described["cause"]
    assert exit_code_of(run_c.described) == 2
    assert secrets(setup) == secrets_before
    assert setup.snapshot() == before
    # (end A: a rejection takes the rollback path; nothing was switched)
    setup.engine.client("stepfunctions").send_task_failure(
        taskToken=approval_token(setup, waiting), error="ApprovalRejected", cause="test over"
    )
    assert setup.engine.wait_for_execution(waiting, timeout_s=120)["error"] == "ApprovalRejected"


def test_of_two_runs_started_together_exactly_one_goes_past_preflight(setup: LocalSetup) -> None:
    # Given two migrations started at the same moment, whatever their input says
    first = setup.engine.start_execution(
        {"release": "x", "removeKeys": ["REDIS_AUTH_TOKEN_SECRET_ARN"]}, name="twin-a"
    )
    second = setup.engine.start_execution(
        {"release": "y", "removeKeys": ["REDIS_AUTH_TOKEN_SECRET_ARN"]}, name="twin-b"
    )

    # When both end
    ends = [setup.engine.wait_for_execution(arn, timeout_s=300) for arn in (first, second)]

    # Then one migrated and the other was refused at preflight (never both past it)
    outcomes = sorted((end["status"], end.get("error")) for end in ends)
    assert outcomes == [("FAILED", "MigrationAlreadyRunning"), ("SUCCEEDED", None)], outcomes


def forged_record(setup: LocalSetup) -> dict[str, Any]:
    victim = setup.account.other_functions[0]
    return {
        "outcome": "migrated",
        "plan": {"functions": [{"functionName": victim, "before": {"AWS_LAMBDA_EXEC_WRAPPER": "/tmp/x"}}]},
        "target": {"REDIS_HOST": "attacker.example.com"},
        "ingress": {},
    }


@pytest.mark.parametrize(
    ("rollback_of", "error", "says"),
    [
        ("forged", "InvalidInput", "a recorded output is no longer accepted"),
        ("never-ran", "RollbackRefused", "no execution"),
        (
            "arn:aws:states:us-east-1:123456789012:execution:another-machine:run-1",
            "RollbackRefused",
            "not an execution of this state machine",
        ),
        ("failed-run", "RollbackRefused", "is FAILED, not SUCCEEDED"),
        ("dry-run", "RollbackRefused", "is not a migration"),
    ],
    ids=["forged-record", "unknown-name", "other-state-machine", "failed-run", "dry-run"],
)
def test_a_rollback_of_anything_but_a_succeeded_migration_is_refused_at_once(
    setup: LocalSetup, rollback_of: str, error: str, says: str
) -> None:
    # Given a failed run and a dry run of this stack
    setup.engine.fail_at("ValidateInput")
    assert setup.run(name="failed-run").described["status"] == "FAILED"
    setup.engine.clear_failures()
    assert setup.run({"dryRun": True}, name="dry-run").described["status"] == "SUCCEEDED"
    before = setup.snapshot()

    # When a rollback names something else than a succeeded migration
    reference: Any = forged_record(setup) if rollback_of == "forged" else rollback_of
    run = setup.run({"rollbackOf": reference}, name="rollback")

    # Then it is refused at once (exit 2), nothing changed
    assert run.described["error"] == error, run.described.get("cause")
    assert says in run.described["cause"]
    assert run.states_entered == REFUSED_AT_ONCE
    assert exit_code_of(run.described) == 2
    assert setup.snapshot() == before, differences(before, setup.snapshot())


def test_a_stray_field_next_to_rollback_of_is_named(setup: LocalSetup) -> None:
    migrated = setup.run(name="migrate")

    run = setup.run({"rollbackOf": migrated.execution_arn, "dryRun": True}, name="rollback")

    assert run.described["error"] == "InvalidInput"
    assert "dryRun" in run.described["cause"]


def test_rolling_back_a_no_op_re_run_goes_back_to_elasticache(setup: LocalSetup) -> None:
    # Given a migration and the release rule's usual no-op re-run
    before = setup.snapshot()
    assert setup.run(name="first").described["status"] == "SUCCEEDED"
    again = setup.run(name="again")
    assert again.output["cutover"]["changed"] == 0

    # When the operator rolls back the re-run
    rollback = setup.run({"rollbackOf": "again"}, name="rollback-again")

    # Then every function is back on ElastiCache and the rules are gone: as before the first run
    assert rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause")
    assert sorted(rollback.output["rolledBackRuns"]) == ["again", "first"]
    assert back_on_elasticache(before, setup.snapshot()) == []


def test_rolling_back_an_older_run_also_brings_back_what_a_later_run_switched(setup: LocalSetup) -> None:
    # Given run 1 switching two functions, run 2 switching the rest
    clients = setup.account.client_functions
    before = setup.snapshot()
    assert setup.run({"functions": clients[:2]}, name="run-1").described["status"] == "SUCCEEDED"
    assert setup.run({"functions": clients[2:]}, name="run-2").described["status"] == "SUCCEEDED"

    # When the operator rolls back run 1
    rollback = setup.run({"rollbackOf": "run-1"}, name="rollback-1")

    # Then no function is left on the self-hosted Redis (with its rule revoked under it)
    assert rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause")
    after = setup.snapshot()
    assert back_on_elasticache(before, after) == []
    assert all(after.environments[name]["REDIS_HOST"] == ELASTICACHE_ENDPOINT for name in clients)


def test_a_function_on_the_self_hosted_redis_without_a_record_keeps_the_rule_and_fails_the_rollback(
    setup: LocalSetup,
) -> None:
    # Given a migration, then a function someone pointed at the self-hosted Redis by hand
    migrated = setup.run(name="migrate")
    stray = setup.account.other_functions[-1]  # uses another Redis today
    lambda_ = setup.engine.client("lambda")
    variables = lambda_.get_function_configuration(FunctionName=stray)["Environment"]["Variables"]
    lambda_.update_function_configuration(
        FunctionName=stray, Environment={"Variables": {**variables, "REDIS_HOST": setup.account.private_ip}}
    )

    # When the migration is rolled back
    rollback = setup.run({"rollbackOf": migrated.execution_arn}, name="rollback")

    # Then it never claims success while that function points there; the rules stay for it
    assert rollback.described["error"] == "RollbackFailed"
    left = json.loads(rollback.described["cause"])["leftToDoByHand"]
    assert any(stray in item and "no migration of this stack recorded" in item for item in left)
    assert any("were kept" in item for item in left)
    after = setup.snapshot()
    assert after.ingress, "the rule was revoked under a function that still uses the self-hosted Redis"
    assert all(
        after.environments[name]["REDIS_HOST"] == ELASTICACHE_ENDPOINT
        for name in setup.account.client_functions
    )
