"""ElastiCache in the local engine: nodes, slow snapshots and deletions, exports, "in use" refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from redis_migration.decommission.preconditions import export_bucket_policy

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.elasticache.monitoring import MONITORING_CONNECTIONS
from redis_migration_ops.local_engine.elasticache.reserved_nodes import ReservedNodes
from redis_migration_ops.local_engine.elasticache.snapshots import ELASTICACHE_CANONICAL_ID
from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheTimings
from tests.unit.local_engine.conftest import FIXTURES

TIMINGS = ElastiCacheTimings(
    snapshot_seconds=100, export_seconds=50, deletion_seconds=400, interface_release_seconds=60
)


@pytest.fixture
def cache() -> Iterator[tuple[LocalEngine, Any, dict[str, str]]]:
    """An engine with a VPC, two security groups (one naming the other), a subnet group, a custom
    parameter group and a two-node replication group using them."""
    with LocalEngine(FIXTURES, elasticache_timings=TIMINGS) as engine:
        ec2 = engine.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
        cache_group = ec2.create_security_group(GroupName="cache", Description="cache", VpcId=vpc)["GroupId"]
        clients = ec2.create_security_group(GroupName="clients", Description="clients", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_egress(
            GroupId=clients,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "UserIdGroupPairs": [{"GroupId": cache_group}],
                }
            ],
        )
        client = engine.client("elasticache")
        client.create_cache_subnet_group(
            CacheSubnetGroupName="cache-net", CacheSubnetGroupDescription="d", SubnetIds=[subnet]
        )
        client.create_cache_parameter_group(
            CacheParameterGroupName="cache-params", CacheParameterGroupFamily="redis7", Description="d"
        )
        client.modify_cache_parameter_group(
            CacheParameterGroupName="cache-params",
            ParameterNameValues=[{"ParameterName": "notify-keyspace-events", "ParameterValue": "Ex"}],
        )
        client.create_replication_group(
            ReplicationGroupId="cache",
            ReplicationGroupDescription="d",
            Engine="redis",
            EngineVersion="7.1",
            CacheNodeType="cache.t4g.small",
            NumCacheClusters=2,
            CacheSubnetGroupName="cache-net",
            CacheParameterGroupName="cache-params",
            SecurityGroupIds=[cache_group],
        )
        yield engine, client, {"cache": cache_group, "clients": clients, "vpc": vpc}


def code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_a_replication_group_has_one_member_cluster_per_node_with_its_settings(cache: Any) -> None:
    # Given a two-node group (NumCacheClusters=2)
    _engine, client, groups = cache

    # When it is described, and its nodes
    group = client.describe_replication_groups(ReplicationGroupId="cache")["ReplicationGroups"][0]
    clusters = client.describe_cache_clusters(CacheClusterId="cache-002")["CacheClusters"]

    # Then it has two nodes, each a cache cluster with its subnet, parameter and security groups
    assert group["MemberClusters"] == ["cache-001", "cache-002"]
    assert clusters[0]["CacheSubnetGroupName"] == "cache-net"
    assert clusters[0]["CacheParameterGroup"]["CacheParameterGroupName"] == "cache-params"
    assert clusters[0]["SecurityGroups"] == [{"SecurityGroupId": groups["cache"], "Status": "active"}]


def test_the_endpoint_a_described_account_recorded_is_the_groups(cache: Any) -> None:
    engine, client, _ = cache

    engine.name_elasticache_endpoint("cache", "Cache.ABC123.0001.use1.cache.amazonaws.com")

    group = client.describe_replication_groups(ReplicationGroupId="cache")["ReplicationGroups"][0]
    assert (
        group["NodeGroups"][0]["PrimaryEndpoint"]["Address"] == "cache.abc123.0001.use1.cache.amazonaws.com"
    )


def test_the_reader_and_each_node_answer_as_elasticache_names_them(cache: Any) -> None:
    engine, client, _ = cache
    domain = "cache.abc123.use1.cache.amazonaws.com"

    # When a described account's names are given to the group
    engine.name_elasticache_endpoint(
        "cache", f"master.{domain}", f"replica.{domain}", [f"cache-001.{domain}", f"cache-002.{domain}"]
    )

    # Then the group answers its reader endpoint beside its primary, and each node its own
    node_group = client.describe_replication_groups(ReplicationGroupId="cache")["ReplicationGroups"][0][
        "NodeGroups"
    ][0]
    assert node_group["ReaderEndpoint"] == {"Address": f"replica.{domain}", "Port": 6379}
    assert [m["ReadEndpoint"]["Address"] for m in node_group["NodeGroupMembers"]] == [
        f"cache-001.{domain}",
        f"cache-002.{domain}",
    ]
    # and a member cluster answers its node's endpoint only when asked (ShowCacheNodeInfo)
    shown = client.describe_cache_clusters(CacheClusterId="cache-002", ShowCacheNodeInfo=True)
    assert [node["Endpoint"]["Address"] for node in shown["CacheClusters"][0]["CacheNodes"]] == [
        f"cache-002.{domain}"
    ]
    assert "CacheNodes" not in client.describe_cache_clusters(CacheClusterId="cache-002")["CacheClusters"][0]


def test_a_snapshot_is_creating_until_the_workflow_has_waited_and_the_group_is_busy_meanwhile(
    cache: Any,
) -> None:
    engine, client, _ = cache

    # When a snapshot is taken
    created = client.create_snapshot(ReplicationGroupId="cache", SnapshotName="final")["Snapshot"]

    # Then it is creating, the group is snapshotting and refuses its deletion
    assert created["SnapshotStatus"] == "creating"
    assert (
        client.describe_replication_groups(ReplicationGroupId="cache")["ReplicationGroups"][0]["Status"]
        == "snapshotting"
    )
    with pytest.raises(ClientError) as refused:
        client.delete_replication_group(ReplicationGroupId="cache")
    assert code(refused) == "InvalidReplicationGroupState"
    with pytest.raises(ClientError) as busy:
        client.delete_snapshot(SnapshotName="final")
    assert code(busy) == "InvalidSnapshotState"
    # and once 100 s have passed on the workflow's clock, it is available and the group too
    engine.elasticache_operations.clock.advance(100)
    assert client.describe_snapshots(SnapshotName="final")["Snapshots"][0]["SnapshotStatus"] == "available"
    assert (
        client.describe_replication_groups(ReplicationGroupId="cache")["ReplicationGroups"][0]["Status"]
        == "available"
    )


def test_a_deleted_group_is_deleting_then_gone_and_its_groups_are_in_use_until_then(cache: Any) -> None:
    engine, client, groups = cache
    ec2 = engine.client("ec2")

    # When the group is deleted
    deleted = client.delete_replication_group(ReplicationGroupId="cache", RetainPrimaryCluster=False)

    # Then it is deleting, and its subnet group, parameter group and security group are in use
    assert deleted["ReplicationGroup"]["Status"] == "deleting"
    with pytest.raises(ClientError) as subnet:
        client.delete_cache_subnet_group(CacheSubnetGroupName="cache-net")
    assert code(subnet) == "CacheSubnetGroupInUse"
    with pytest.raises(ClientError) as parameters:
        client.delete_cache_parameter_group(CacheParameterGroupName="cache-params")
    assert code(parameters) == "InvalidCacheParameterGroupState"
    with pytest.raises(ClientError) as again:
        client.delete_replication_group(ReplicationGroupId="cache")
    assert code(again) == "InvalidReplicationGroupState"

    # When 400 s have passed: the group is gone, the subnet and parameter groups can go
    engine.elasticache_operations.clock.advance(400)
    with pytest.raises(ClientError) as gone:
        client.describe_replication_groups(ReplicationGroupId="cache")
    assert code(gone) == "ReplicationGroupNotFoundFault"
    client.delete_cache_subnet_group(CacheSubnetGroupName="cache-net")
    client.delete_cache_parameter_group(CacheParameterGroupName="cache-params")
    with pytest.raises(ClientError) as absent:
        client.delete_cache_parameter_group(CacheParameterGroupName="cache-params")
    assert code(absent) == "CacheParameterGroupNotFound"

    # but the security group is held by the nodes' interfaces a while, and by the rule naming it
    with pytest.raises(ClientError) as held:
        ec2.delete_security_group(GroupId=groups["cache"])
    assert code(held) == "DependencyViolation"
    engine.elasticache_operations.clock.advance(60)
    with pytest.raises(ClientError) as referenced:
        ec2.delete_security_group(GroupId=groups["cache"])
    assert code(referenced) == "DependencyViolation"
    assert f"resource {groups['cache']} has a dependent object" in str(referenced.value)
    ec2.revoke_security_group_egress(
        GroupId=groups["clients"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 6379,
                "ToPort": 6379,
                "UserIdGroupPairs": [{"GroupId": groups["cache"]}],
            }
        ],
    )
    ec2.delete_security_group(GroupId=groups["cache"])


def test_a_default_parameter_group_is_never_deleted_and_a_custom_ones_parameters_are_listed(
    cache: Any,
) -> None:
    _, client, _ = cache

    with pytest.raises(ClientError) as refused:
        client.delete_cache_parameter_group(CacheParameterGroupName="default.redis7")
    parameters = client.describe_cache_parameters(CacheParameterGroupName="cache-params", Source="user")[
        "Parameters"
    ]
    tags = client.list_tags_for_resource(
        ResourceName="arn:aws:elasticache:us-east-1:123456789012:parametergroup:cache-params"
    )

    assert code(refused) == "InvalidParameterValue"
    assert [(p["ParameterName"], p["ParameterValue"]) for p in parameters] == [
        ("notify-keyspace-events", "Ex")
    ]
    assert tags["TagList"] == []


def _export_bucket(engine: LocalEngine, name: str, grant: bool) -> None:
    s3 = engine.client("s3")
    # The ACL grant needs ACLs enabled: a new bucket has them disabled (s3/object_ownership.py).
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred")
    if grant:
        owner = s3.get_bucket_acl(Bucket=name)["Owner"]
        s3.put_bucket_acl(
            Bucket=name,
            AccessControlPolicy={
                "Owner": owner,
                "Grants": [
                    {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                    *[
                        {
                            "Grantee": {"Type": "CanonicalUser", "ID": ELASTICACHE_CANONICAL_ID},
                            "Permission": p,
                        }
                        for p in ("READ", "WRITE", "READ_ACP")
                    ],
                ],
            },
        )


def test_an_export_needs_the_bucket_grant_then_writes_an_rdb_file_after_a_while(cache: Any) -> None:
    engine, client, _ = cache
    client.create_snapshot(ReplicationGroupId="cache", SnapshotName="final")
    engine.elasticache_operations.clock.advance(100)
    _export_bucket(engine, "no-grant", grant=False)
    _export_bucket(engine, "exports", grant=True)

    # When the snapshot is exported to a bucket that does not grant ElastiCache anything
    with pytest.raises(ClientError) as refused:
        client.copy_snapshot(SourceSnapshotName="final", TargetSnapshotName="final", TargetBucket="no-grant")
    # Then it is refused as AWS words it
    assert code(refused) == "InvalidParameterValue"
    assert "ElastiCache has not been granted READ permissions no-grant on the S3 Bucket" in str(refused.value)

    # When it is exported to a bucket that does
    client.copy_snapshot(SourceSnapshotName="final", TargetSnapshotName="final", TargetBucket="exports")
    assert client.describe_snapshots(SnapshotName="final")["Snapshots"][0]["SnapshotStatus"] == "exporting"
    assert "Contents" not in engine.client("s3").list_objects_v2(Bucket="exports")
    engine.elasticache_operations.clock.advance(50)

    # Then the file appears, an RDB file of the engine's format (Redis 7.1 writes version 10)
    assert client.describe_snapshots(SnapshotName="final")["Snapshots"][0]["SnapshotStatus"] == "available"
    body = engine.client("s3").get_object(Bucket="exports", Key="final-0001.rdb")["Body"].read()
    assert body.startswith(b"REDIS0010")
    with pytest.raises(ClientError) as twice:
        client.copy_snapshot(SourceSnapshotName="final", TargetSnapshotName="final", TargetBucket="exports")
    assert "already contains an object with key final-0001.rdb" in str(twice.value)


def test_a_new_bucket_refuses_an_acl_grant_and_takes_elasticache_by_bucket_policy(cache: Any) -> None:
    engine, client, _ = cache
    client.create_snapshot(ReplicationGroupId="cache", SnapshotName="final")
    engine.elasticache_operations.clock.advance(100)
    s3 = engine.client("s3")
    # Given a bucket created as AWS creates one today: ACLs disabled (Object Ownership enforced)
    s3.create_bucket(Bucket="exports")
    ownership = s3.get_bucket_ownership_controls(Bucket="exports")["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    owner = s3.get_bucket_acl(Bucket="exports")["Owner"]
    # When ElastiCache's documented ACL grant is added, then S3 refuses it
    with pytest.raises(ClientError) as refused:
        s3.put_bucket_acl(
            Bucket="exports",
            AccessControlPolicy={
                "Owner": owner,
                "Grants": [
                    {
                        "Grantee": {"Type": "CanonicalUser", "ID": ELASTICACHE_CANONICAL_ID},
                        "Permission": "WRITE",
                    }
                ],
            },
        )
    assert code(refused) == "AccessControlListNotSupported"
    # And the export is refused, as it is into any bucket that does not let ElastiCache in
    with pytest.raises(ClientError) as not_granted:
        client.copy_snapshot(SourceSnapshotName="final", TargetSnapshotName="final", TargetBucket="exports")
    assert "ElastiCache has not been granted READ permissions exports" in str(not_granted.value)
    # When the bucket policy for ElastiCache's service principal is added, then the export runs
    s3.put_bucket_policy(Bucket="exports", Policy=json.dumps(export_bucket_policy("exports", "us-east-1")))
    client.copy_snapshot(SourceSnapshotName="final", TargetSnapshotName="final", TargetBucket="exports")
    engine.elasticache_operations.clock.advance(50)
    assert client.describe_snapshots(SnapshotName="final")["Snapshots"][0]["SnapshotStatus"] == "available"
    assert s3.get_object(Bucket="exports", Key="final-0001.rdb")["Body"].read().startswith(b"REDIS00")


def test_published_metrics_answer_get_metric_data_per_node(cache: Any) -> None:
    engine, _, _ = cache
    end = datetime.now(UTC)

    count = engine.publish_elasticache_metrics(
        "cache", end - timedelta(minutes=10), end, connections=3, get_commands=7
    )
    answer = engine.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "c",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ElastiCache",
                        "MetricName": "CurrConnections",
                        "Dimensions": [{"Name": "CacheClusterId", "Value": "cache-002"}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=end - timedelta(minutes=11),
        EndTime=end + timedelta(minutes=1),
    )

    assert count == 10
    # 3 clients + ElastiCache's own monitoring connections (elasticache/monitoring.py)
    assert max(answer["MetricDataResults"][0]["Values"]) == 3.0 + MONITORING_CONNECTIONS
    assert json.dumps(answer["MetricDataResults"][0]["Values"])  # datapoints exist


def test_reserved_cache_nodes_are_described_as_aws_lists_them(cache: Any) -> None:
    engine, client, _ = cache
    now = datetime.now(UTC)
    # Given an active one-year reservation and one whose three years ended
    engine.record_reserved_cache_nodes(
        [
            ReservedNodes("ri-active", "cache.t4g.medium", 2, now - timedelta(days=30)),
            ReservedNodes("ri-old", "cache.r6g.large", 1, now - timedelta(days=4 * 365), years=3),
        ]
    )
    # When they are listed, by the paginator the product uses
    pages = client.get_paginator("describe_reserved_cache_nodes").paginate()
    listed = {row["ReservedCacheNodeId"]: row for page in pages for row in page["ReservedCacheNodes"]}
    # Then each has AWS's fields, its state from its term, and the filters select as AWS's do
    assert listed["ri-active"]["State"] == "active"
    assert listed["ri-active"]["Duration"] == 365 * 24 * 3600
    assert listed["ri-active"]["CacheNodeCount"] == 2
    assert listed["ri-old"]["State"] == "retired"
    assert listed["ri-old"]["Duration"] == 3 * 365 * 24 * 3600
    by_type = client.describe_reserved_cache_nodes(CacheNodeType="cache.t4g.medium")["ReservedCacheNodes"]
    by_years = client.describe_reserved_cache_nodes(Duration="3")["ReservedCacheNodes"]
    assert [row["ReservedCacheNodeId"] for row in by_type] == ["ri-active"]
    assert [row["ReservedCacheNodeId"] for row in by_years] == ["ri-old"]
    with pytest.raises(ClientError) as missing:
        client.describe_reserved_cache_nodes(ReservedCacheNodeId="ri-nope")
    assert code(missing) == "ReservedCacheNodeNotFound"
