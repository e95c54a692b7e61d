"""The bake as the workflow will run it: the real template's RecordBaseline and CheckBake functions
(IAM enforced against their roles), the real CutOverFunction, and a bake loop in ASL (the states
handed to the lead to wire: RecordBaseline, the cutover, then CheckBake, a Choice and a Wait).

Lambda's metrics come from the engine's traffic model: every client function has steady traffic
(history before the run, then as many minutes as the workflow's Waits ask for); a function whose
code "cannot use the new Redis" errors from the moment its REDIS_HOST changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.models import (
    REDIS_HOST,
    REDIS_PASSWORD_SECRET_ARN,
    REDIS_PORT,
    FunctionPlan,
    InstanceFacts,
    MigrationRequest,
    PlanDocument,
)
from redis_migration.records import plan_key, put_record, record_location, write_batches

from redis_migration_ops.account.description import sample_account
from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.elasticache.monitoring import MONITORING_CONNECTIONS
from redis_migration_ops.local_engine.lambda_.metrics import LambdaTraffic, TrafficRates
from redis_migration_ops.rehearsal.client_traffic import TrafficError, simulate_client_traffic
from redis_migration_ops.rehearsal.local_account import LocalAccount, build_account
from redis_migration_ops.rehearsal.migration import REPO_ROOT, stack_parameters
from tests.statemachine.conftest import assert_calls_allowed_and_each_statement_needed

BAKE_MINUTES = 15
LAMBDA_RETRY = [
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
            "Lambda.ClientExecutionTimeoutException",
            "TransientError",
        ],
        "IntervalSeconds": 2,
        "MaxAttempts": 5,
        "BackoffRate": 2,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL",
    }
]


def bake_definition(arns: dict[str, str]) -> dict[str, Any]:
    """The bake's states as the migration ASL gets them (around the cutover it already has)."""

    def task(function: str, payload: Any, timeout: int, **rest: Any) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {"FunctionName": arns[function], "Payload": payload},
            "TimeoutSeconds": timeout,
            "Retry": LAMBDA_RETRY,
            **rest,
        }

    return {
        "QueryLanguage": "JSONata",
        "StartAt": "RecordBaseline",
        "States": {
            "RecordBaseline": task(
                "RecordBaselineFunction",
                {
                    "record": "{% $states.input.plan.record %}",
                    "planSha256": "{% $states.input.plan.planSha256 %}",
                    "bakeMinutes": "{% $states.input.plan.request.bakeMinutes %}",
                    "thresholds": "{% $states.input.plan.request.bakeThresholds %}",
                    "elasticacheEndpoint": "{% $states.input.plan.request.elasticacheEndpoint %}",
                },
                150,
                Assign={
                    "plan": "{% $states.input.plan %}",
                    "baseline": "{% $states.result.Payload %}",
                    "bake": None,
                },
                Next="CutOverFunctions",
            ),
            "CutOverFunctions": {
                "Type": "Map",
                "Items": "{% $plan.batches %}",
                "ItemSelector": {
                    "record": "{% $plan.record %}",
                    "batch": "{% $states.context.Map.Item.Value %}",
                    "target": "{% $plan.target %}",
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "CutOverFunction",
                    "States": {
                        "CutOverFunction": task(
                            "CutOverFunctionFunction",
                            "{% $states.input %}",
                            330,
                            Output="{% $states.result.Payload %}",
                            End=True,
                        )
                    },
                },
                "Next": "CheckBake",
            },
            "CheckBake": task(
                "CheckBakeFunction",
                # One expression: $bake is null before the first check (a key whose value is null
                # is then left out, which CheckBake reads as no progress).
                "{% {'record': $plan.record, 'baseline': $baseline, 'progress': $bake, "
                "'batchesSwitched': $count($plan.batches), 'finalWave': true} %}",
                150,
                Assign={"bake": "{% $states.result.Payload %}"},
                Next="IsBakeOver",
            ),
            "IsBakeOver": {
                "Type": "Choice",
                "Choices": [
                    {"Condition": "{% $bake.status = 'regressed' %}", "Next": "BakeRegressed"},
                    {"Condition": "{% $bake.status = 'passed' %}", "Next": "BakePassed"},
                ],
                "Default": "WaitForBake",
            },
            "WaitForBake": {"Type": "Wait", "Seconds": "{% $bake.nextCheckSeconds %}", "Next": "CheckBake"},
            "BakePassed": {"Type": "Succeed", "Output": "{% {'baseline': $baseline, 'bake': $bake} %}"},
            "BakeRegressed": {"Type": "Fail", "Error": "BakeRegressed", "Cause": "{% $bake.summary %}"},
        },
    }


@dataclass
class Setup:
    engine: LocalEngine
    account: LocalAccount
    plan: dict[str, Any]
    connections: list[int]


def write_plan(engine: LocalEngine, account: LocalAccount) -> dict[str, Any]:
    """A migration plan of the account's clients in the records bucket, as CheckPreconditions
    records it; answers what the ASL's $plan carries of it."""
    aws = AwsClients(factory=engine.client)
    machine = (
        f"arn:aws:states:us-east-1:{engine.account_id}:stateMachine:campaign-system-redis-migration-rehearsal"
    )
    execution = machine.replace(":stateMachine:", ":execution:") + ":bake-run"
    location = record_location(engine.stack.environment["RECORDS_BUCKET"], machine, execution)
    lambda_ = engine.client("lambda")
    plans = []
    for name in sorted(account.client_functions):
        variables = lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        before = {key: variables.get(key) for key in (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD_SECRET_ARN)}
        plans.append(FunctionPlan(function_name=name, before=before))
    batches = write_batches(location, plans, aws)
    request = MigrationRequest(
        project_name=account.project_name,
        environment=account.environment,
        instance_id=account.instance_id,
        elasticache_endpoint=account.elasticache_endpoint,
        functions=None,
        remove_keys=[],
        redis_port=6379,
        release=None,
        dry_run=False,
        require_approval=False,
        maxmemory="512mb",
        maxmemory_policy="allkeys-lru",
        bind_all_interfaces=False,
        bake_minutes=BAKE_MINUTES,
    )
    target = {REDIS_HOST: account.private_ip, REDIS_PORT: "6379", REDIS_PASSWORD_SECRET_ARN: None}
    document = PlanDocument(
        execution_arn=execution,
        kind="migration",
        request=request,
        instance=InstanceFacts(
            instance_id=account.instance_id,
            private_ip=account.private_ip,
            vpc_id=account.vpc_id,
            vpc_cidr="10.20.0.0/16",
            security_group_id=account.redis_group_id,
            platform="Linux/UNIX",
        ),
        target=target,
        functions=plans,
        batches=batches,
    )
    digest = put_record(location, plan_key(location), document.to_json_dict(), aws)
    return {
        "record": location.to_json_dict(),
        "planSha256": digest,
        "batches": [batch.to_json_dict() for batch in batches],
        "target": target,
        "request": request.to_json_dict(),
    }


@pytest.fixture
def setup() -> Iterator[Setup]:
    with LocalEngine(REPO_ROOT) as engine:
        account = build_account(engine, sample_account(3))
        engine.deploy(stack_parameters(account))
        connections = [25]
        node = engine.client("elasticache").describe_replication_groups(
            ReplicationGroupId=account.replication_group_id
        )["ReplicationGroups"][0]["NodeGroups"][0]["NodeGroupMembers"][0]
        engine.elasticache_metrics.watch_node(
            node["CacheClusterId"], node["CacheNodeId"], lambda: connections[0], history_minutes=BAKE_MINUTES
        )
        yield Setup(engine, account, write_plan(engine, account), connections)


def run_bake(setup: Setup, name: str) -> tuple[dict[str, Any], str]:
    engine = setup.engine
    sfn = engine.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"bake-{name}",
        definition=json.dumps(bake_definition(engine.stack.function_arns)),
        roleArn=f"arn:aws:iam::{engine.account_id}:role/bake-loop",
    )
    started = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name=name, input=json.dumps({"plan": setup.plan})
    )
    return engine.wait_for_execution(started["executionArn"], timeout_s=120), started["executionArn"]


def add_traffic(setup: Setup, failing: str | None = None) -> None:
    """Every client: 20 invocations and 1 error a minute; ``failing`` errors 8 a minute once switched."""
    for name in setup.account.client_functions:
        after = TrafficRates(invocations=20, errors=8) if name == failing else None
        setup.engine.lambda_metrics.add_traffic(
            LambdaTraffic(name, before=TrafficRates(invocations=20, errors=1), after=after),
            history_minutes=BAKE_MINUTES,
        )


def test_a_quiet_bake_passes_after_its_minutes_with_only_allowed_calls(setup: Setup) -> None:
    # Given steady traffic, and ElastiCache's clients leaving it once switched
    add_traffic(setup)
    setup.connections[0] = 0

    # When the bake runs after the cutover
    described, arn = run_bake(setup, "quiet")

    # Then it passes after 15 minutes of waits and the 2 minutes of settling, one check a minute
    assert described["status"] == "SUCCEEDED", described.get("cause")
    output = json.loads(described["output"])
    bake, baseline = output["bake"], output["baseline"]
    assert bake["status"] == "passed"
    assert setup.engine.invocations(arn, "CheckBake") == BAKE_MINUTES + 3
    waits = [w.seconds for w in setup.engine.requested_waits if w.state_name == "WaitForBake"]
    assert waits == [60.0] * (BAKE_MINUTES + 2)
    assert (baseline["functionCount"], baseline["errors"], baseline["nodeCount"]) == (3, 3 * BAKE_MINUTES, 1)
    assert baseline["elasticacheConnections"] == 25
    # The workflow's clock moves with its waits, so the traffic of each waited minute lands in its
    # own minute: the window holds the bake's 15 minutes from the first check's minute (the 2
    # settling minutes fall after it). Traffic is modelled for waited time only, so the window's
    # first minute has it from the first check on, and the last waited seconds past the window's
    # end count after it: at most one minute's 3 errors fewer.
    assert bake["functionsWatched"] == 3
    assert 3 * (BAKE_MINUTES - 1) <= bake["errors"] <= 3 * BAKE_MINUTES
    assert bake["elasticache"] == {
        "nodes": 1,
        "connections": 0,
        "maxPerNode": 0,
        "baseline": 25,
        "judged": False,  # reported: CLIENT LIST judges after the bake (CheckElastiCacheClientsAfter)
    }
    # ... and the steps' calls were each allowed by the template's statements, which are all needed
    actions = assert_calls_allowed_and_each_statement_needed(
        setup.engine, {"RecordBaselineFunction", "CheckBakeFunction"}
    )
    assert actions == {
        "cloudwatch:GetMetricData",
        "elasticache:DescribeReplicationGroups",
        "s3:GetObject",
        "s3:PutObject",
    }


def test_a_function_that_fails_once_switched_regresses_the_bake_by_name(setup: Setup) -> None:
    # Given the rehearsal's traffic: one client errors 10 times a minute once it points to the new
    # Redis (0.2 a minute before: 3 in the baseline's 15 minutes)
    failing = sorted(setup.account.client_functions)[1]
    simulate_client_traffic(setup.engine, setup.account, history_minutes=BAKE_MINUTES, failing=[failing])

    # When the bake runs after the cutover
    described, arn = run_bake(setup, "regression")

    # Then it regresses as soon as that function's errors pass 3 * 2 + 5 = 11: after 2 minutes
    assert described["status"] == "FAILED"
    assert described["error"] == "BakeRegressed"
    assert f"FunctionErrors {failing}: 20 > 11 allowed (3 before)" in described["cause"]
    assert setup.engine.invocations(arn, "CheckBake") == 3


def test_the_rehearsal_model_shows_elasticache_losing_its_clients_and_an_unswitched_one_staying(
    setup: Setup,
) -> None:
    # Given the rehearsal's traffic with one ElastiCache client the workflow does not switch
    simulate_client_traffic(setup.engine, setup.account, history_minutes=BAKE_MINUTES, other_clients=1)

    # When the bake runs after the cutover
    described, _ = run_bake(setup, "leftover")

    # Then ElastiCache had the 3 functions, the other client and its own monitoring before, and
    # keeps the other one and its monitoring: reported, not a regression (CurrConnections cannot
    # tell a client from ElastiCache's own connections; CLIENT LIST judges after the bake)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    elasticache = json.loads(described["output"])["bake"]["elasticache"]
    assert (elasticache["baseline"], elasticache["connections"]) == (
        4 + MONITORING_CONNECTIONS,
        1 + MONITORING_CONNECTIONS,
    )
    assert elasticache["judged"] is False
    with pytest.raises(TrafficError, match="--bake-regression nobody: not a client function"):
        simulate_client_traffic(setup.engine, setup.account, history_minutes=1, failing=["nobody"])
