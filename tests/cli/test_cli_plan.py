"""`plan` (a dry run) changes nothing and shows what would change; `rollback` refuses a dry run."""

from __future__ import annotations

import json
from typing import Any

import redis

from redis_migration_ops.account.description import ELASTICACHE_ENDPOINT, OLD_AUTH_KEY
from tests.cli.conftest import POLL_S, LocalStack


def test_plan_changes_nothing_and_shows_every_change(local_stack: LocalStack) -> None:
    # Given a rehearsal account that was never migrated, with a client of ElastiCache the run does
    # not switch (a process at an address no interface of the account has)
    before = local_stack.snapshot()
    secrets_before = local_stack.secret_names()
    stranger: Any = redis.Redis(
        host=ELASTICACHE_ENDPOINT,
        port=6379,
        password=local_stack.account.elasticache_auth_token,
        ssl=True,
        socket_timeout=5,
        protocol=2,
        driver_info=None,
    )
    with local_stack.engine.acting_as_address("10.42.9.9"):
        stranger.ping()
    # When an operator asks for the plan
    try:
        result = local_stack.cli(
            *local_stack.with_machine(
                "plan", "--release", "v2.14.0", "--remove-key", OLD_AUTH_KEY, "--interval", POLL_S
            )
        )
    finally:
        stranger.close()
    # Then nothing changed: every function's environment, the security group, the secrets
    assert result.exit_code == 0, result.stderr
    assert local_stack.snapshot() == before
    assert local_stack.secret_names() == secrets_before
    assert local_stack.secret_name not in secrets_before
    # And the plan names each function, each variable with the form that named the cache, old → new,
    # the rule and the install
    plan = result.stdout
    ip = local_stack.account.private_ip
    for function in local_stack.account.client_functions:
        assert f"  {function}\n" in plan
    for function in local_stack.account.other_functions:
        assert function not in plan
    assert plan.count(f"REDIS_HOST (host): {ELASTICACHE_ENDPOINT} → {ip}") == 3
    assert plan.count(f"REDIS_PASSWORD_SECRET_ARN: (absent) → (new secret {local_stack.secret_name})") == 3
    assert plan.count(f"{OLD_AUTH_KEY}: {local_stack.account.old_auth_secret_arn} → (absent)") == 3
    assert f"Ingress: allow tcp 6379 to {local_stack.account.redis_group_id} from" in plan
    assert local_stack.account.client_group_id in plan
    assert local_stack.account.probe_group_id in plan
    assert f"Install: Redis 7 on {local_stack.account.instance_id} ({ip}" in plan
    assert "maxmemory 512mb allkeys-lru" in plan
    # And every client of ElastiCache's nodes, with the one the run leaves on ElastiCache named
    assert "ElastiCache's clients (CLIENT LIST of every node): 1" in plan
    assert "Not switched by this run (their writes stay on ElastiCache):" in plan
    assert "unknown client" in plan
    assert "at 10.42.9.9 on " in plan
    assert "Nothing was changed (dry run plan-rehearsal-v2-14-0-" in plan


def test_plan_json_is_the_recorded_plan(local_stack: LocalStack) -> None:
    # Given the same account
    # When the plan is asked for as JSON, with an explicit function list from an input file
    path = local_stack.input_file(
        "plan", functions=local_stack.account.client_functions[:1], release="v2.14.1"
    )
    result = local_stack.cli(
        *local_stack.with_machine("plan", "--input", str(path), "--json", "--interval", POLL_S)
    )
    # Then it is CheckPreconditions' plan for exactly that function, as a dry run
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [f["functionName"] for f in plan["functions"]] == local_stack.account.client_functions[:1]
    assert plan["request"]["dryRun"] is True
    assert plan["request"]["release"] == "v2.14.1"
    assert plan["target"]["REDIS_PASSWORD_SECRET_ARN"] is None


def test_rollback_refuses_a_dry_run(local_stack: LocalStack) -> None:
    # Given a dry run that succeeded
    planned = local_stack.cli(*local_stack.with_machine("plan", "--release", "v9", "--interval", POLL_S))
    assert planned.exit_code == 0, planned.stderr
    name = planned.stderr.split("dry run ", 1)[1].split(" ", 1)[0]
    # When a rollback of it is asked for
    result = local_stack.cli(*local_stack.with_machine("rollback", name))
    # Then it is refused in one line (exit 2): a dry run changed nothing
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is not a migration (its outcome is 'planned'" in result.stderr


def test_start_refuses_a_bad_input_before_starting_anything(local_stack: LocalStack) -> None:
    # Given an input with a typo'd field and a bad value
    path = local_stack.input_file("bad", release="v1", maxmemory="lots", requireAproval=True)
    executions_before = local_stack.engine.client("stepfunctions").list_executions(
        stateMachineArn=local_stack.state_machine_arn
    )["executions"]
    # When it is started
    result = local_stack.cli(*local_stack.with_machine("start", "--input", str(path)))
    # Then one line names each bad field, exit 2, and no execution was started
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "maxmemory" in result.stderr
    assert "requireAproval" in result.stderr
    executions_after = local_stack.engine.client("stepfunctions").list_executions(
        stateMachineArn=local_stack.state_machine_arn
    )["executions"]
    assert len(executions_after) == len(executions_before)


def test_an_execution_that_does_not_exist_is_one_clear_line_exit_2(local_stack: LocalStack) -> None:
    # Given a well-formed ARN of an execution that does not exist, and a name that does not either
    missing = local_stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":no-such-run"
    for arguments in (["watch", missing], local_stack.with_machine("history", "no-such-run")):
        # When the operator asks about it
        result = local_stack.cli(*arguments)
        # Then one line names the problem, exit 2, no traceback
        assert result.exit_code == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: ExecutionDoesNotExist")


def test_plan_flags_functions_deployed_by_cloudformation_with_the_values_for_their_template(
    local_stack: LocalStack,
) -> None:
    # Given one client deployed by a CloudFormation stack (the tags CloudFormation puts on it)
    lambda_ = local_stack.engine.client("lambda")
    flagged = local_stack.account.client_functions[0]
    arn = lambda_.get_function_configuration(FunctionName=flagged)["FunctionArn"]
    lambda_.tag_resource(
        Resource=arn,
        Tags={
            "aws:cloudformation:stack-name": "campaign-app",
            "aws:cloudformation:logical-id": "WorkerFunction",
        },
    )
    try:
        # When an operator asks for the plan
        result = local_stack.cli(
            *local_stack.with_machine("plan", "--remove-key", OLD_AUTH_KEY, "--interval", POLL_S)
        )
    finally:
        lambda_.untag_resource(
            Resource=arn, TagKeys=["aws:cloudformation:stack-name", "aws:cloudformation:logical-id"]
        )
    # Then the plan names it, its stack, and the exact values to put in its template
    assert result.exit_code == 0, result.stderr
    plan = result.stdout
    ip = local_stack.account.private_ip
    assert "1 function(s) are deployed by CloudFormation or Terraform" in plan
    assert f"  set REDIS_HOST={ip}, REDIS_PORT=6379, REDIS_PASSWORD_SECRET_ARN=<the ARN of secret " in plan
    assert f"  remove {OLD_AUTH_KEY}" in plan
    assert f"  {flagged}: CloudFormation stack campaign-app, resource WorkerFunction" in plan
    for other in local_stack.account.client_functions[1:]:
        assert f"  {other}: CloudFormation" not in plan
    # And the JSON plan carries the count and a sample, the details per function
    path = local_stack.input_file("plan-managed", release="v2.14.2", removeKeys=[OLD_AUTH_KEY])
    lambda_.tag_resource(Resource=arn, Tags={"ManagedBy": "Terraform"})
    try:
        planned = local_stack.cli(
            *local_stack.with_machine("plan", "--input", str(path), "--json", "--interval", POLL_S)
        )
        assert planned.exit_code == 0, planned.stderr
        summary = json.loads(planned.stdout)
    finally:
        lambda_.untag_resource(Resource=arn, TagKeys=["ManagedBy"])
    assert summary["managedFunctionCount"] == 1
    assert summary["managedFunctionSample"] == [flagged]
    managed = {f["functionName"]: f["managedBy"] for f in summary["functions"]}
    assert managed[flagged] == "Terraform (tag ManagedBy=Terraform)"
