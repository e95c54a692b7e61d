"""The whole migration through the real ASL: success, re-runs, refusals, and secrets that never travel."""

from __future__ import annotations

import json
import time

import pytest
from redis_migration.models import MANAGED_KEYS

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.rehearsal.migration import LocalSetup, plan_document
from tests.statemachine.conftest import approval_token, back_on_elasticache, is_migrated


def test_a_migration_switches_every_client_and_nothing_else(setup: LocalSetup) -> None:
    before = setup.snapshot()

    run = setup.run()
    after = setup.snapshot()

    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    assert is_migrated(setup, before, after, run)
    target = run.output["target"]
    assert target["REDIS_HOST"] == setup.account.private_ip
    assert target["REDIS_PORT"] == "6379"
    assert target["REDIS_PASSWORD_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    for name in setup.account.client_functions:
        now = after.environments[name]
        assert OLD_AUTH_KEY not in now
        assert {k: v for k, v in now.items() if k not in MANAGED_KEYS} == {
            k: v for k, v in before.environments[name].items() if k not in (*MANAGED_KEYS, OLD_AUTH_KEY)
        }
    # The plan recorded each function's values before the change, for the audit and the rollback.
    recorded = {
        f["functionName"]: f["before"] for f in plan_document(setup.engine, run.output["plan"])["functions"]
    }
    assert sorted(recorded) == sorted(setup.account.client_functions)
    for name, values in recorded.items():
        assert values["REDIS_HOST"] == before.environments[name]["REDIS_HOST"]
    # The port is open to the client functions' group and the probe's group only, by group.
    assert set(after.ingress) == {
        f"6379 {setup.account.client_group_id}",
        f"6379 {setup.account.probe_group_id}",
    }
    assert run.output["probe"]["checks"]
    assert all(check["ok"] for check in run.output["probe"]["checks"])
    assert run.output["install"]["version"].startswith("7.")


def test_the_states_run_in_the_designed_order(setup: LocalSetup) -> None:
    run = setup.run()

    # The install is polled until it finishes: WaitForInstall/CheckInstall may repeat.
    first_entries = list(dict.fromkeys(name for name in run.states_entered if name != "CutOverFunction"))
    assert first_entries == [
        "IsRollbackRequested", "ValidateInput", "InspectHostBefore", "CheckPreconditions", "CheckData",
        "ListElastiCacheClientsBefore", "CheckElastiCacheClientsBefore", "IsDryRun", "NotifyMigrationStarted",
        "EnsurePasswordSecret", "AllowRedisIngress", "InstallRedis", "WaitForInstall", "CheckInstall",
        "IsInstallFinished", "ProbeRedis", "IsApprovalRequired", "IsBaselineNeeded", "IsDataCopyNeeded",
        "CutOverFunctions", "DidEveryCutoverSucceed", "VerifyCutover", "IsHostServicesCutoverNeeded",
        "IsUnfreezeNeeded", "IsCatchUpNeeded", "IsBakeNeeded", "IsLastWave", "ListElastiCacheClientsAfter",
        "WasElastiCacheListed", "CheckElastiCacheClientsAfter", "IsElastiCacheStillUsed",
        "InspectHostAfter", "NotifyMigrationSucceeded", "MigrationSucceeded",
    ]  # fmt: skip
    assert run.states_entered.count("CutOverFunction") == len(setup.account.client_functions)


def test_a_second_run_of_a_finished_migration_changes_nothing_and_says_so(setup: LocalSetup) -> None:
    first = setup.run(name="first")
    assert first.described["status"] == "SUCCEEDED"
    lambda_ = setup.engine.client("lambda")
    revisions = {
        name: lambda_.get_function_configuration(FunctionName=name)["RevisionId"]
        for name in setup.account.client_functions
    }
    pid = setup.sandbox.service_main_pid("redis-server")
    secrets = setup.engine.client("secretsmanager").list_secrets()["SecretList"]
    middle = setup.snapshot()

    second = setup.run(name="second")

    assert second.described["status"] == "SUCCEEDED"
    assert setup.snapshot() == middle
    assert {
        name: lambda_.get_function_configuration(FunctionName=name)["RevisionId"]
        for name in setup.account.client_functions
    } == revisions, "a function was updated although its values already matched"
    assert setup.sandbox.service_main_pid("redis-server") == pid, "Redis was restarted"
    assert setup.engine.client("secretsmanager").list_secrets()["SecretList"] == secrets
    output = second.output
    assert output["install"]["changed"] is False
    assert output["cutover"]["changed"] == 0
    assert output["cutover"]["unchanged"] == len(setup.account.client_functions)
    assert output["ingress"]["addedSourceGroupIds"] == []
    assert output["target"] == first.output["target"]


def test_a_re_run_after_a_failure_completes_the_migration(setup: LocalSetup) -> None:
    before = setup.snapshot()
    setup.engine.fail_at("VerifyCutover")
    failed = setup.run(name="fails")
    assert failed.described["status"] == "FAILED"
    assert setup.snapshot() == before
    setup.engine.clear_failures()

    again = setup.run(name="again")

    assert again.described["status"] == "SUCCEEDED", again.described.get("cause")
    assert is_migrated(setup, before, setup.snapshot(), again)


def test_a_rollback_started_later_restores_every_function_exactly(setup: LocalSetup) -> None:
    before = setup.snapshot()
    migrated = setup.run(name="migrate")
    assert migrated.described["status"] == "SUCCEEDED"

    rollback = setup.run({"rollbackOf": migrated.execution_arn}, name="rollback-later")

    assert rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause")
    assert rollback.output["outcome"] == "rolledBack"
    assert back_on_elasticache(before, setup.snapshot()) == []
    assert "CutOverFunctions" not in rollback.states_entered


def test_a_function_changed_by_someone_else_is_reported_not_overwritten(setup: LocalSetup) -> None:
    migrated = setup.run(name="migrate")
    victim = setup.account.client_functions[0]
    lambda_ = setup.engine.client("lambda")
    variables = lambda_.get_function_configuration(FunctionName=victim)["Environment"]["Variables"]
    variables["REDIS_HOST"] = "someone-elses-redis.internal"
    lambda_.update_function_configuration(FunctionName=victim, Environment={"Variables": variables})

    rollback = setup.run({"rollbackOf": migrated.execution_arn}, name="rollback-later")

    assert rollback.described["error"] == "RollbackFailed"
    cause = json.loads(rollback.described["cause"])
    assert any(victim in item and "changed by someone else" in item for item in cause["leftToDoByHand"])
    now = lambda_.get_function_configuration(FunctionName=victim)["Environment"]["Variables"]
    assert now["REDIS_HOST"] == "someone-elses-redis.internal"
    others = setup.account.client_functions[1:]
    assert all(setup.snapshot().environments[n]["REDIS_HOST"] != setup.account.private_ip for n in others)


@pytest.mark.parametrize(
    ("execution_input", "named"),
    [
        ({"redisPort": 80, "colour": "blue"}, ["redisPort", "colour"]),
        ({"instanceId": "web-1"}, ["instanceId"]),
        ({"functions": ["no such function!"]}, ["functions"]),
        ({"removeKeys": ["REDIS_HOST"]}, ["removeKeys"]),
    ],
    ids=["port-and-unknown-field", "instance-id", "function-name", "managed-key"],
)
def test_bad_input_is_rejected_first_naming_each_bad_field(
    setup: LocalSetup, execution_input: dict[str, object], named: list[str]
) -> None:
    before = setup.snapshot()

    run = setup.run(execution_input, name="bad-input")

    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "InvalidInput"
    for field in named:
        assert field in run.described["cause"]
    assert run.states_entered == ["IsRollbackRequested", "ValidateInput", "InputRejected"]
    assert setup.snapshot() == before


def test_a_remove_keys_list_no_environment_could_hold_is_refused_at_validation(setup: LocalSetup) -> None:
    # Given removeKeys of 900 keys (90 KB; the input stays far below Step Functions' 256 KiB): every key
    # travels in the run's target, its plan and its output, so MigrationSucceeded would exceed 256 KiB
    # (States.DataLimitExceeded, which no Catch catches) after every function was switched
    keys = [f"OLD_SETTING_{number:04d}_".ljust(100, "X") for number in range(900)]
    before = setup.snapshot()

    run = setup.run({"removeKeys": keys}, name="long-remove-keys")

    # Then ValidateInput refuses it, naming the field and the limit, before anything changes
    assert run.described["error"] == "InvalidInput", run.described.get("cause")
    assert "removeKeys" in run.described["cause"]
    assert "4096 bytes" in run.described["cause"]
    assert run.states_entered == ["IsRollbackRequested", "ValidateInput", "InputRejected"]
    assert setup.snapshot() == before


def test_a_plaintext_redis_password_is_refused_before_any_change(setup: LocalSetup) -> None:
    lambda_ = setup.engine.client("lambda")
    name = setup.account.client_functions[1]
    variables = lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    lambda_.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**variables, "REDIS_PASSWORD": "hunter2"}}
    )
    before = setup.snapshot()

    run = setup.run(name="plaintext")

    assert run.described["error"] == "PreconditionFailed"
    assert name in run.described["cause"]
    assert "REDIS_PASSWORD" in run.described["cause"]
    assert "hunter2" not in json.dumps(run.history, default=str)
    assert setup.snapshot() == before
    assert setup.engine.client("secretsmanager").list_secrets()["SecretList"] == [
        s
        for s in setup.engine.client("secretsmanager").list_secrets()["SecretList"]
        if "redis-password" not in s["Name"]
    ]


def test_a_second_migration_of_the_same_environment_is_refused_while_one_runs(setup: LocalSetup) -> None:
    sfn = setup.engine.client("stepfunctions")
    # Given a migration waiting for approval (it stays RUNNING)
    waiting = setup.engine.start_execution(
        {"requireApproval": True, "release": "r1"}, name="waits-for-approval"
    )
    deadline = time.monotonic() + 60
    while "WaitForApproval" not in [
        e.get("stateEnteredEventDetails", {}).get("name") for e in setup.engine.history(waiting)
    ]:
        assert time.monotonic() < deadline, "never reached WaitForApproval"
        time.sleep(0.1)
    before = setup.snapshot()

    # When a second one starts
    second = setup.run(name="second")

    # Then it is refused at preflight and changes nothing
    assert second.described["error"] == "MigrationAlreadyRunning"
    assert "waits-for-approval" in second.described["cause"]
    assert setup.snapshot() == before
    # (end the first: a rejection takes the rollback path, nothing was switched)
    token = approval_token(setup, waiting)
    sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause="test over")
    ended = setup.engine.wait_for_execution(waiting, timeout_s=60)
    assert ended["error"] == "ApprovalRejected"
