"""The decommission's pieces on their own: the price table, the input, the checks, the way back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from redis_migration.aws import AwsClients
from redis_migration.decommission.inventory import token_in
from redis_migration.decommission.models import (
    DecommissionInput,
    DecommissionSettings,
    Inventory,
    ParameterGroupFacts,
    ReferencingRule,
    ReplicationGroupFacts,
    Rule,
    SecurityGroupFacts,
    SubnetGroupFacts,
)
from redis_migration.decommission.preconditions import (
    ELASTICACHE_CANONICAL_ID,
    client_metrics,
    export_bucket_policy,
    export_bucket_problems,
    final_snapshot_name,
    infrastructure_as_code,
    resolve_request,
)
from redis_migration.decommission.pricing import Reservation, monthly_saving, price_table
from redis_migration.decommission.restore import restore_commands
from redis_migration.errors import InvalidInput

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:campaign-system-redis-migration-dev"


def group_facts(**changes: Any) -> ReplicationGroupFacts:
    facts: dict[str, Any] = {
        "replication_group_id": "campaign-redis",
        "arn": "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:campaign-redis",
        "description": "campaign cache",
        "status": "available",
        "engine": "redis",
        "engine_version": "7.1",
        "node_type": "cache.t4g.small",
        "node_count": 2,
        "shard_count": 1,
        "cluster_mode": "disabled",
        "member_clusters": ["campaign-redis-001", "campaign-redis-002"],
        "endpoints": ["master.campaign-redis.abc123.use1.cache.amazonaws.com"],
        "primary_endpoint": "master.campaign-redis.abc123.use1.cache.amazonaws.com",
        "port": 6379,
        "subnet_group": "campaign-cache",
        "parameter_group": "campaign-params",
        "security_group_ids": ["sg-0aaa"],
        "transit_encryption": True,
        "at_rest_encryption": True,
        "auth_token_enabled": True,
        "kms_key_id": None,
        "multi_az": True,
        "automatic_failover": True,
        "snapshot_retention_limit": 7,
        "tags": {"Project": "campaign", "aws:cloudformation:stack-name": "campaign-cache"},
    }
    facts.update(changes)
    return ReplicationGroupFacts(**facts)


def inventory(**changes: Any) -> Inventory:
    parts: dict[str, Any] = {
        "replication_group": group_facts(),
        "subnet_group": SubnetGroupFacts(
            name="campaign-cache", description="cache subnets", subnet_ids=["subnet-1", "subnet-2"]
        ),
        "parameter_group": ParameterGroupFacts(
            name="campaign-params",
            family="redis7",
            description="params",
            parameters={"notify-keyspace-events": "Ex"},
        ),
        "security_groups": [
            SecurityGroupFacts(
                group_id="sg-0aaa",
                name="cache",
                description="the cache's group",
                vpc_id="vpc-1",
                rules=[
                    Rule(
                        direction="ingress", protocol="tcp", from_port=6379, to_port=6379, group_id="sg-0bbb"
                    )
                ],
                referencing_rules=[
                    ReferencingRule(
                        group_id="sg-0bbb",
                        group_name="clients",
                        rule=Rule(
                            direction="egress",
                            protocol="tcp",
                            from_port=6379,
                            to_port=6379,
                            group_id="sg-0aaa",
                        ),
                    )
                ],
                tags={"ManagedBy": "terraform"},
            )
        ],
        "auth_token_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cache-token-AbCdEf",
    }
    parts.update(changes)
    return Inventory(**parts)


# -- the price table ----------------------------------------------------------------------------


def test_the_price_table_is_dated_cites_its_source_and_covers_the_common_sizes_in_several_regions() -> None:
    table = price_table()

    assert datetime.fromisoformat(table["date"])
    assert "pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonElastiCache" in table["source"]
    assert len(table["regions"]) >= 3
    for prices in table["regions"].values():
        for family in ("t3", "t4g", "m6g", "r6g"):
            assert any(node.startswith(f"cache.{family}.") for node in prices), family


def test_the_saving_is_nodes_times_the_hourly_price_times_730_hours() -> None:
    saving = monthly_saving("cache.t4g.small", 2, "redis", "us-east-1")

    assert saving.hourly_usd_per_node == pytest.approx(0.032)
    assert saving.monthly_usd == pytest.approx(2 * 0.032 * 730)
    assert "$46.72/month (2 x cache.t4g.small on demand in us-east-1" in saving.line()


def test_nodes_a_reservation_may_cover_save_nothing_until_it_ends() -> None:
    # Given two cache.t4g.small nodes, and active reservations in the account: one cache.t4g.medium
    # (2 units: covers both smalls, size flexibility) and one of another family
    ends = datetime(2027, 3, 1, tzinfo=UTC)
    medium = Reservation(reservation_id="ri-medium", node_type="cache.t4g.medium", count=1, ends=ends)
    other = Reservation(reservation_id="ri-r6g", node_type="cache.r6g.large", count=4, ends=ends)
    # When the saving is computed
    covered = monthly_saving("cache.t4g.small", 2, "redis", "us-east-1", reservations=[medium, other])
    half = monthly_saving(
        "cache.t4g.small",
        2,
        "redis",
        "us-east-1",
        reservations=[medium.model_copy(update={"node_type": "cache.t4g.micro"})],
    )
    # Then the covered nodes count for nothing, and the reservation is named with its end
    assert covered.reserved_nodes == 2
    assert covered.monthly_usd == pytest.approx(0.0)
    assert covered.reservations == ["ri-medium: 1 x cache.t4g.medium, until 2027-03-01"]
    assert "2 node(s) may be covered by reserved nodes (ri-medium: 1 x cache.t4g.medium" in covered.line()
    assert "nothing is saved on them until it ends" in covered.line()
    # (a micro is half a small: it covers no whole small node)
    assert half.reserved_nodes == 0
    assert half.monthly_usd == pytest.approx(2 * 0.032 * 730)


def test_the_kept_snapshot_storage_is_taken_off_the_saving() -> None:
    # Given nodes that held 10 GiB of data, and the price table's backup storage rate
    rate = price_table()["backupStorageUsdPerGibMonth"]
    # When the saving is computed
    saving = monthly_saving("cache.t4g.small", 2, "redis", "us-east-1", snapshot_bytes=10 * 1024**3)
    unknown = monthly_saving("cache.t4g.small", 2, "redis", "us-east-1")
    # Then the final snapshot's storage is subtracted, and said
    assert saving.snapshot_gib == pytest.approx(10.0)
    assert saving.snapshot_monthly_usd == pytest.approx(10 * rate)
    assert saving.monthly_usd == pytest.approx(2 * 0.032 * 730 - 10 * rate)
    assert f"minus the final snapshot's storage, about 10.00 GiB at ${rate}/GiB-month" in saving.line()
    assert "its size was not known" in unknown.line()


def test_valkey_is_priced_below_redis_and_an_unknown_price_is_said_not_guessed() -> None:
    valkey = monthly_saving("cache.r6g.large", 1, "valkey", "us-east-1")
    nowhere = monthly_saving("cache.r6g.large", 1, "redis", "mars-north-1")
    odd = monthly_saving("cache.x9.huge", 1, "redis", "us-east-1")

    assert valkey.monthly_usd == pytest.approx(0.206 * 0.8 * 730, abs=0.01)
    assert nowhere.monthly_usd is None
    assert "no prices for region mars-north-1" in nowhere.line()
    assert odd.monthly_usd is None
    assert "no price for cache.x9.huge" in odd.line()


# -- the input ----------------------------------------------------------------------------------


def test_the_input_names_every_bad_field_and_a_name_resolves_to_this_state_machines_execution() -> None:
    with pytest.raises(InvalidInput) as bad:
        resolve_request(
            {"decommissionOf": "x y", "soakHours": -1, "exportBucket": "A", "soak_hours": 1}, MACHINE
        )
    request, arn = resolve_request({"decommissionOf": "release-1"}, MACHINE)

    for field in ("decommissionOf", "soakHours", "exportBucket", "soak_hours"):
        assert field in str(bad.value)
    assert arn == MACHINE.replace(":stateMachine:", ":execution:") + ":release-1"
    assert request.soak_hours == 48
    assert request.require_approval is True


def test_an_execution_of_another_state_machine_is_refused() -> None:
    other = "arn:aws:states:us-east-1:123456789012:execution:someone-else:run-1"

    with pytest.raises(InvalidInput, match="is not an execution of this state machine"):
        resolve_request({"decommissionOf": other}, MACHINE)


def test_the_final_snapshot_has_one_name_per_migration_so_a_re_run_finds_it() -> None:
    stopped = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)

    assert final_snapshot_name("campaign-redis", stopped) == "campaign-redis-final-202603011234"
    assert DecommissionInput.model_validate({"decommissionOf": "x"}).soak_hours == 48


# -- infrastructure as code ---------------------------------------------------------------------


def test_resources_a_template_owns_are_listed_in_the_order_to_remove_them() -> None:
    problems = infrastructure_as_code(inventory(), ["ManagedBy=terraform"])

    (problem,) = problems
    first = problem.index("1. the replication group campaign-redis (CloudFormation stack campaign-cache)")
    second = problem.index("2. the security group sg-0aaa (cache) (tag ManagedBy=terraform)")
    assert first < second
    assert "first the rules of other groups that name it: security group sg-0bbb (clients)" in problem
    assert infrastructure_as_code(inventory(replication_group=group_facts(tags={})), []) == []


# -- the way back -------------------------------------------------------------------------------


def test_the_way_back_recreates_everything_with_the_old_settings_and_never_holds_the_token() -> None:
    commands = restore_commands(inventory(), "campaign-redis-final-202603011234", "us-east-1")
    text = "\n".join(commands)

    create = next(
        command for command in commands if command.startswith("aws elasticache create-replication-group")
    )
    for expected in (
        "--replication-group-id campaign-redis",
        "--snapshot-name campaign-redis-final-202603011234",
        "--engine redis",
        "--engine-version 7.1",
        "--cache-node-type cache.t4g.small",
        "--num-cache-clusters 2",
        "--cache-subnet-group-name campaign-cache",
        "--cache-parameter-group-name campaign-params",
        "--security-group-ids $SG_1",
        "--transit-encryption-enabled",
        "--at-rest-encryption-enabled",
        "--automatic-failover-enabled",
        "--multi-az-enabled",
        "--snapshot-retention-limit 7",
        "--tags Key=Project,Value=campaign",
    ):
        assert expected in create, expected
    assert "aws:cloudformation" not in create
    assert "secretsmanager restore-secret" in text
    assert (
        "get-secret-value --secret-id arn:aws:secretsmanager:us-east-1:123456789012:secret:cache-token-AbCdEf"
        in create
    )
    assert "ParameterName=notify-keyspace-events,ParameterValue=Ex" in text
    # the rule of the clients' group is recreated toward the new group
    assert '--group-id sg-0bbb --ip-permissions "[{\\"IpProtocol\\":\\"tcp\\"' in text
    assert '\\"GroupId\\":\\"$SG_1\\"' in text


def test_the_way_back_of_a_cluster_mode_group_names_its_shards() -> None:
    group = group_facts(cluster_mode="enabled", shard_count=3, node_count=6, auth_token_enabled=False)

    create = restore_commands(inventory(replication_group=group), "snap", "eu-west-1")[-2]

    assert "--num-node-groups 3" in create
    assert "--replicas-per-node-group 1" in create
    assert "--auth-token" not in create


def test_a_token_is_read_from_the_secrets_json_or_bare() -> None:
    assert token_in(json.dumps({"token": "t0k"})) == "t0k"
    assert token_in(json.dumps({"authToken": "a"})) == "a"
    assert token_in("bare-token") == "bare-token"


# -- CloudWatch, S3 (moto) ----------------------------------------------------------------------


@pytest.fixture
def aws(aws_env: None) -> Iterator[AwsClients]:
    with mock_aws():
        yield AwsClients(factory=lambda service: boto3.client(service, region_name="us-east-1"))


def _publish(
    aws: AwsClients, cluster: str, start: datetime, minutes: int, connections: float, commands: float
) -> None:
    dimensions = [{"Name": "CacheClusterId", "Value": cluster}]
    data: list[Any] = []
    for minute in range(minutes):
        at = start + timedelta(minutes=minute)
        data += [
            {
                "MetricName": "CurrConnections",
                "Dimensions": dimensions,
                "Timestamp": at,
                "Value": connections,
            },
            {"MetricName": "GetTypeCmds", "Dimensions": dimensions, "Timestamp": at, "Value": commands},
            {"MetricName": "SetTypeCmds", "Dimensions": dimensions, "Timestamp": at, "Value": 0.0},
        ]
    aws.cloudwatch.put_metric_data(Namespace="AWS/ElastiCache", MetricData=data)


def test_metrics_after_the_cutover_name_each_node_still_used(aws: AwsClients) -> None:
    now = datetime.now(UTC)
    cutover = now - timedelta(hours=2)
    _publish(aws, "cache-001", cutover + timedelta(minutes=1), 60, connections=9, commands=40)
    _publish(aws, "cache-002", cutover + timedelta(minutes=1), 60, connections=2, commands=0)

    summary, problems = client_metrics(["cache-001", "cache-002"], cutover, now, aws)

    # CurrConnections is reported, not judged (ElastiCache's monitoring, old environments' sockets):
    # the commands name the node still used
    assert summary.max_connections == 9
    assert len(problems) == 1
    assert "node cache-001 served 2400 read/write commands" in problems[0]


def test_only_elasticaches_own_connections_are_no_client_and_no_data_at_all_is_no_proof(
    aws: AwsClients,
) -> None:
    now = datetime.now(UTC)
    # ElastiCache's own monitoring: "4 to 6" connections a node, lately
    _publish(aws, "quiet-001", now - timedelta(minutes=50), 30, connections=6, commands=0)

    _, quiet = client_metrics(["quiet-001"], now - timedelta(hours=1), now, aws)
    _, silent = client_metrics(["other-001"], now - timedelta(hours=1), now, aws)
    _, short = client_metrics(["other-001"], now - timedelta(minutes=5), now, aws)

    assert quiet == []
    assert silent == [
        "CloudWatch has no CurrConnections datapoint for other-001 over the last 1.0 h: the metrics cannot "
        "show that nobody uses ElastiCache"
    ]
    assert short == []  # a few minutes' soak: the metrics may not be in yet; CLIENT LIST decides


def test_an_export_bucket_must_grant_elasticache_read_write_and_read_acp(aws: AwsClients) -> None:
    stack = DecommissionSettings.model_validate({"SNAPSHOT_EXPORT_BUCKET_NAME": "exports"})
    aws.s3.create_bucket(Bucket="exports")

    refused = export_bucket_problems("exports", stack, "us-east-1", aws)
    owner = aws.s3.get_bucket_acl(Bucket="exports")["Owner"]
    grants: list[Any] = [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"}
    ]
    grants += [
        {"Grantee": {"Type": "CanonicalUser", "ID": ELASTICACHE_CANONICAL_ID}, "Permission": permission}
        for permission in ("READ", "WRITE", "READ_ACP")
    ]
    aws.s3.put_bucket_acl(Bucket="exports", AccessControlPolicy={"Owner": owner, "Grants": grants})
    granted = export_bucket_problems("exports", stack, "us-east-1", aws)
    elsewhere = export_bucket_problems("exports", stack, "eu-west-1", aws)
    not_the_stacks = export_bucket_problems("other", stack, "us-east-1", aws)

    assert "does not grant ElastiCache READ, WRITE, READ_ACP" in refused[0]
    assert f"--grant-write id={ELASTICACHE_CANONICAL_ID}" in refused[0]
    assert (
        "or add a bucket policy for ElastiCache: aws s3api put-bucket-policy --bucket exports" in refused[0]
    )
    assert granted == []
    assert elsewhere == [
        "exportBucket exports is in us-east-1; ElastiCache exports only to a bucket in eu-west-1"
    ]
    assert "the stack's SnapshotExportBucketName is exports" in not_the_stacks[0]


def test_an_export_bucket_with_acls_disabled_is_refused_with_the_bucket_policy_way(aws: AwsClients) -> None:
    # Given the stack's export bucket created as S3 creates one today: ACLs disabled
    stack = DecommissionSettings.model_validate({"SNAPSHOT_EXPORT_BUCKET_NAME": "exports"})
    aws.s3.create_bucket(Bucket="exports", ObjectOwnership="BucketOwnerEnforced")
    # When the preflight checks it
    refused = export_bucket_problems("exports", stack, "us-east-1", aws)
    # Then the refusal says why a grant cannot be added, and gives the bucket policy, ready to paste
    assert len(refused) == 1
    assert "its ACLs are disabled (Object Ownership BucketOwnerEnforced" in refused[0]
    assert "(AccessControlListNotSupported)" in refused[0]
    policy = json.loads(refused[0].split("--policy '", 1)[1].split("'", 1)[0])
    assert policy == export_bucket_policy("exports", "us-east-1")
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"Service": "us-east-1.elasticache-snapshot.amazonaws.com"}
    assert statement["Resource"] == ["arn:aws:s3:::exports", "arn:aws:s3:::exports/*"]
    assert "--ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerPreferred}]'" in refused[0]
    # When the policy is put on the bucket, then the bucket passes
    aws.s3.put_bucket_policy(Bucket="exports", Policy=json.dumps(policy))
    assert export_bucket_problems("exports", stack, "us-east-1", aws) == []


def test_in_an_opt_in_region_only_the_bucket_policy_is_offered(aws: AwsClients) -> None:
    stack = DecommissionSettings.model_validate({"SNAPSHOT_EXPORT_BUCKET_NAME": "exports"})
    regional = boto3.client("s3", region_name="ap-east-1")
    regional.create_bucket(Bucket="exports", CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})

    refused = export_bucket_problems("exports", stack, "ap-east-1", aws)

    assert len(refused) == 1
    assert "ap-east-1 is an opt-in Region, where ElastiCache is let in by bucket policy" in refused[0]
    assert "ap-east-1.elasticache-snapshot.amazonaws.com" in refused[0]
    assert "put-bucket-acl" not in refused[0]
