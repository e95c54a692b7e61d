"""Retiring ElastiCache after the soak: the real ASL and handlers, moto's ElastiCache as the local
engine completes it, and a real TLS redis-server standing in for the replication group; run
directly and through the CLI (`redis-migration decommission`, `history`).

One account per module: migrated once; ElastiCache is rebuilt after each test that deletes it.
(`rehearse --decommission` builds its own account: tests/cli/test_cli_rehearse_decommission.py.)
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from typer.testing import CliRunner

from redis_migration_ops.cli import app
from redis_migration_ops.local_engine.elasticache.reserved_nodes import ReservedNodes
from redis_migration_ops.rehearsal.decommission import elasticache_state, run_decommission
from tests.statemachine.decommission_support import (
    PARAMETER_GROUP,
    Migrated,
    all_gone,
    migrated_account,
    rebuild_elasticache,
)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    with migrated_account(tmp_path_factory.mktemp("decommission") / "rehearsal") as made:
        yield made


@pytest.fixture(autouse=True)
def fresh_elasticache(migrated: Migrated) -> Iterator[None]:
    """Every test starts from the account's ElastiCache, whole, and no injected failure."""
    yield
    migrated.setup.engine.clear_failures()
    rebuild_elasticache(migrated)


def test_a_decommission_deletes_elasticache_keeps_the_final_snapshot_and_names_the_saving(
    migrated: Migrated,
) -> None:
    # Given a migration that succeeded and an ElastiCache nobody uses any more
    setup = migrated.setup
    before = migrated.state()
    assert before.replication_group == "available"
    assert before.parameter_group
    assert before.subnet_group
    cache_group = setup.account.security_groups["campaign-system-elasticache"]

    # When the decommission runs (soak 0, export to the bucket, the gate approved)
    run = run_decommission(setup, migrated.migration.execution_arn)

    # Then it succeeded: everything is gone but the final snapshot and its export; the secret is scheduled
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    after = elasticache_state(setup)
    assert all_gone(after), after
    (snapshot,) = after.snapshots
    assert snapshot.startswith("campaign-redis-final-")
    assert after.exported_files == [f"s3://campaign-system-elasticache-exports-rehearsal/{snapshot}-0001.rdb"]
    exported = (
        setup.engine.client("s3")
        .get_object(Bucket="campaign-system-elasticache-exports-rehearsal", Key=f"{snapshot}-0001.rdb")[
            "Body"
        ]
        .read()
    )
    assert exported.startswith(b"REDIS00")
    # the gate was passed, the saving and the way back are in the output
    assert "WaitForDecommissionApproval" in run.states_entered
    output = run.output
    assert output["outcome"] == "decommissioned"
    assert output["saving"]["monthlyUsd"] == pytest.approx(0.032 * 730)
    assert "$23.36/month" in output["savingSummary"]
    restore = "\n".join(output["restoreCommands"])
    assert f"--snapshot-name {snapshot}" in restore
    assert "--cache-node-type cache.t4g.small" in restore
    assert f"--cache-parameter-group-name {PARAMETER_GROUP}" in restore
    # the rule of the clients' group that named ElastiCache's group was revoked first
    revoked = [rule for report in output["reports"] for rule in report.get("revokedRules", [])]
    clients = f"security group {setup.account.client_group_id} (campaign-system-lambda-clients)"
    assert revoked == [f"{clients}: egress tcp 6379 to {cache_group}"]
    # the security group was retried while the deleted nodes' interfaces still held it
    assert any(
        wait.state_name == "DeleteElastiCacheSecurityGroups" and wait.kind == "Retry"
        for wait in setup.engine.requested_waits
    )


def test_the_saving_leaves_out_nodes_a_reservation_pays_for_and_the_kept_snapshot(migrated: Migrated) -> None:
    # Given the account holds an active reservation of a cache.t4g.medium (2 units: it may cover the
    # group's cache.t4g.small node), and ElastiCache reported the data its node held
    setup = migrated.setup
    started = datetime.now(UTC) - timedelta(days=10)
    setup.engine.record_reserved_cache_nodes([ReservedNodes("ri-campaign", "cache.t4g.medium", 1, started)])
    try:
        # When the decommission runs
        run = run_decommission(setup, migrated.migration.execution_arn)
    finally:
        setup.engine.record_reserved_cache_nodes([])
    # Then the node the reservation pays for saves nothing, the kept snapshot's storage is taken off,
    # and the summary says both
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    saving = run.output["saving"]
    assert saving["reservedNodes"] == 1
    assert saving["reservations"] == [
        f"ri-campaign: 1 x cache.t4g.medium, until {started.year + 1}-{started:%m-%d}"
    ]
    assert saving["snapshotGib"] > 0
    assert saving["monthlyUsd"] == pytest.approx(-saving["snapshotMonthlyUsd"])
    summary = run.output["savingSummary"]
    assert "1 node(s) may be covered by reserved nodes (ri-campaign" in summary
    assert "minus the final snapshot's storage, about" in summary


def test_a_release_run_after_the_decommission_finds_everything_migrated_and_changes_nothing(
    migrated: Migrated,
) -> None:
    # Given ElastiCache decommissioned
    setup = migrated.setup
    assert run_decommission(setup, migrated.migration.execution_arn).described["status"] == "SUCCEEDED"
    before = setup.snapshot()

    # When a release event starts a migration (the input the release rule sends)
    run = setup.run({"environment": setup.account.environment, "release": "2.0.0"}, name="release-after")

    # Then it succeeds and changes nothing: every function already on the self-hosted Redis
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    assert run.output["cutover"]["changed"] == 0
    assert setup.snapshot() == before


def test_a_rollback_after_the_decommission_is_refused_until_elasticache_is_restored(
    migrated: Migrated,
) -> None:
    # Given ElastiCache decommissioned
    setup = migrated.setup
    assert run_decommission(setup, migrated.migration.execution_arn).described["status"] == "SUCCEEDED"
    before = setup.snapshot()

    # When the migration is rolled back
    run = setup.run({"rollbackOf": migrated.migration.execution_arn}, name="rollback-after-decommission")

    # Then it is refused, pointing at the restore, and no function changed
    assert run.described["error"] == "RollbackRefused"
    assert "replication group campaign-redis does not exist (decommissioned)" in run.described["cause"]
    assert "restore it from its final snapshot first" in run.described["cause"]
    assert setup.snapshot() == before


def test_a_function_still_naming_elasticache_is_named_and_nothing_is_deleted(migrated: Migrated) -> None:
    # Given a function whose $LATEST names the endpoint in a URL, and one whose aliased version does
    setup = migrated.setup
    lambda_ = setup.engine.client("lambda")
    endpoint = setup.account.elasticache_endpoint
    role = setup.engine.client("iam").get_role(RoleName="campaign-functions")["Role"]["Arn"]
    code = {"ZipFile": _zip()}
    lambda_.create_function(
        FunctionName="campaign-late-worker",
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code=code,
        Environment={"Variables": {"CACHE_URL": f"rediss://{endpoint}:6379/0"}},
    )
    lambda_.create_function(
        FunctionName="campaign-old-version",
        Runtime="python3.13",
        Role=role,
        Handler="app.handler",
        Code=code,
        Environment={"Variables": {"REDIS_HOST": endpoint}},
    )
    waiter = lambda_.get_waiter("function_updated_v2")
    version = lambda_.publish_version(FunctionName="campaign-old-version")["Version"]
    lambda_.create_alias(FunctionName="campaign-old-version", Name="live", FunctionVersion=version)
    lambda_.update_function_configuration(
        FunctionName="campaign-old-version", Environment={"Variables": {"REDIS_HOST": "10.0.0.1"}}
    )
    waiter.wait(FunctionName="campaign-old-version", WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    before = migrated.state()
    try:
        # When the decommission runs
        run = run_decommission(setup, migrated.migration.execution_arn)
    finally:
        for name in ("campaign-late-worker", "campaign-old-version"):
            lambda_.delete_function(FunctionName=name)

    # Then it is refused naming both, and nothing changed
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "DecommissionRefused"
    cause = run.described["cause"]
    assert "function campaign-late-worker ($LATEST) still names ElastiCache in CACHE_URL" in cause
    assert f"function campaign-old-version (version {version}, served by alias live)" in cause
    assert "WaitForDecommissionApproval" not in run.states_entered
    assert migrated.state() == before


def test_a_cloudformation_owned_replication_group_is_refused_with_what_to_remove_in_order(
    migrated: Migrated,
) -> None:
    # Given the replication group belongs to a CloudFormation stack, the subnet group to Terraform
    setup = migrated.setup
    client = setup.engine.client("elasticache")
    group_arn = "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:campaign-redis"
    subnet_arn = "arn:aws:elasticache:us-east-1:123456789012:subnetgroup:campaign-system-cache"
    client.add_tags_to_resource(
        ResourceName=group_arn,
        Tags=[
            {"Key": "aws:cloudformation:stack-name", "Value": "campaign-cache"},
            {"Key": "aws:cloudformation:logical-id", "Value": "RedisReplicationGroup"},
        ],
    )
    client.add_tags_to_resource(ResourceName=subnet_arn, Tags=[{"Key": "ManagedBy", "Value": "terraform"}])
    before = migrated.state()
    try:
        # When the decommission runs, the operator naming Terraform's tag
        run = run_decommission(
            setup, migrated.migration.execution_arn, extra_input={"managedByTags": ["ManagedBy=terraform"]}
        )
    finally:
        client.remove_tags_from_resource(
            ResourceName=group_arn, TagKeys=["aws:cloudformation:stack-name", "aws:cloudformation:logical-id"]
        )
        client.remove_tags_from_resource(ResourceName=subnet_arn, TagKeys=["ManagedBy"])

    # Then it is refused, naming what to remove from the templates, in order; nothing changed
    assert run.described["error"] == "DecommissionRefused"
    cause = run.described["cause"]
    first = cause.index(
        "1. the replication group campaign-redis (CloudFormation stack campaign-cache, logical id "
        "RedisReplicationGroup); give it a final snapshot first"
    )
    second = cause.index("2. the cache subnet group campaign-system-cache (tag ManagedBy=terraform)")
    assert first < second
    assert migrated.state() == before


def test_a_client_still_connected_and_a_short_soak_are_named_at_once(migrated: Migrated) -> None:
    # Given a client still connected to ElastiCache (a cron job on an instance of the VPC), and a
    # soak of 48 h the migration has not had
    assert migrated.stand_in is not None
    connection = redis.Redis(**migrated.stand_in.connection_kwargs(), client_name="campaign-cron")
    with migrated.setup.engine.acting_as_address("10.42.1.200"):
        connection.ping()
    before = migrated.state()
    try:
        # When the decommission runs with the default soak
        run = run_decommission(migrated.setup, migrated.migration.execution_arn, soak_hours=48)
    finally:
        connection.close()

    # Then both reasons are named in one refusal, and nothing changed
    cause = run.described["cause"]
    assert run.described["error"] == "DecommissionRefused"
    assert "named 'campaign-cron'" in cause
    assert "is still connected" in cause
    assert "the soak is 48 h: wait until" in cause
    assert migrated.state() == before


def test_a_rejected_decommission_changes_nothing(migrated: Migrated) -> None:
    # Given a decommission waiting at its gate
    setup = migrated.setup
    before = migrated.state()
    sfn = setup.engine.client("stepfunctions")
    arn = setup.engine.start_execution(
        {"decommissionOf": migrated.migration.execution_arn, "soakHours": 0}, name="decommission-rejected"
    )
    token = _wait_for_token(migrated, arn)

    # When the operator rejects it
    sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause="rejected by test: not today")
    described = setup.engine.wait_for_execution(arn, timeout_s=60)

    # Then it failed with the rejection, and nothing changed
    assert described["status"] == "FAILED"
    assert described["error"] == "ApprovalRejected"
    assert "nothing was deleted" in described["cause"]
    assert migrated.state() == before


# -- operated from the CLI (in-process; its boto3 calls land in the engine) -----------------------


def test_decommission_refuses_an_execution_that_is_not_a_migration(migrated: Migrated) -> None:
    # Given a dry run of the stack (it succeeded, but migrated nothing)
    setup = migrated.setup
    dry = setup.run({"dryRun": True}, name="dry-run-for-cli")
    machine = setup.engine.stack.state_machine_arn()

    # When the operator asks to decommission after it
    result = CliRunner().invoke(
        app, ["decommission", dry.execution_arn.rsplit(":", 1)[-1], "--state-machine-arn", machine]
    )

    # Then nothing starts, and the refusal says why (exit 2)
    assert result.exit_code == 2, result.output
    assert "is not a migration (its outcome is 'planned')" in result.output


def test_decommission_waits_to_the_end_prints_the_way_back_and_history_reports_the_saving(
    migrated: Migrated,
) -> None:
    # Given the migration that succeeded, named as the operator would
    setup = migrated.setup
    machine = setup.engine.stack.state_machine_arn()
    name = migrated.migration.execution_arn.rsplit(":", 1)[-1]

    # When the operator decommissions after it (no gate, soak 0) and follows it
    result = CliRunner().invoke(
        app,
        [
            "decommission",
            name,
            "--soak-hours",
            "0",
            "--no-approval",
            "--wait",
            "--interval",
            "0.05",
            "--state-machine-arn",
            machine,
        ],
    )

    # Then it ends decommissioned (exit 0), printing the saving and the restore command
    assert result.exit_code == 0, result.output
    assert all_gone(elasticache_state(setup))
    assert "monthly saving: $23.36/month" in result.output
    assert "aws elasticache create-replication-group" in result.output
    assert "--snapshot-name campaign-redis-final-" in result.output
    started = result.output.splitlines()[0].strip()

    # and its audit report has the decommission: what went, the snapshot kept, the saving
    history = CliRunner().invoke(app, ["history", started, "--format", "markdown"])
    assert history.exit_code == 0, history.output
    assert "## Decommission" in history.output
    assert "Complete: yes" in history.output
    assert "Monthly saving: $23.36/month" in history.output
    report = json.loads(CliRunner().invoke(app, ["history", started, "--format", "json"]).output)
    assert report["decommission"]["monthlySavingUsd"] == pytest.approx(23.36)
    assert report["trigger"]["kind"] == "decommission"


def _wait_for_token(migrated: Migrated, arn: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for event in migrated.setup.engine.history(arn):
            details = event.get("taskScheduledEventDetails")
            if details and details["resource"] == "publish.waitForTaskToken":
                return str(json.loads(json.loads(details["parameters"])["Message"])["taskToken"])
        time.sleep(0.05)
    raise AssertionError("the decommission never reached its gate")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()
