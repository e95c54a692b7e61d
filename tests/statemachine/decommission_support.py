"""One local account per module for the decommission's tests: migrated once, ElastiCache rebuilt
between decommissions (the same names, so the stand-in, the stack's IAM and its parameters hold).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from redis_migration_ops.account.description import (
    AccountDescription,
    CacheParameterGroup,
    Rule,
    sample_account,
)
from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from redis_migration_ops.local_engine.elasticache.timing import ElastiCacheTimings
from redis_migration_ops.rehearsal.decommission import (
    ElastiCacheState,
    elasticache_running,
    elasticache_state,
    export_bucket_name,
    publish_soak_metrics,
)
from redis_migration_ops.rehearsal.migration import LocalSetup, RunResult, local_setup

# Shorter than the rehearsal's, so a run polls a few times instead of sixteen.
TEST_TIMINGS = ElastiCacheTimings(
    snapshot_seconds=30, export_seconds=30, deletion_seconds=30, interface_release_seconds=30
)
CLIENTS = 2
PARAMETER_GROUP = "campaign-redis-params"


def decommission_account() -> AccountDescription:
    """The sample account, with a custom parameter group and a rule of another group naming ElastiCache's."""
    base = sample_account(CLIENTS)
    groups = []
    for described in base.security_groups:
        group = described
        if described.name.endswith("lambda-clients"):
            group = described.model_copy(
                update={
                    "egress": [
                        Rule(protocol="all", cidr=ipaddress.IPv4Network("0.0.0.0/0")),
                        Rule(
                            protocol="tcp",
                            from_port=6379,
                            to_port=6379,
                            group="campaign-system-elasticache",
                            description="to ElastiCache",
                        ),
                    ]
                }
            )
        groups.append(group)
    cache = base.elasticache.model_copy(
        update={
            "parameter_group": CacheParameterGroup(
                name=PARAMETER_GROUP, family="redis7", parameters={"notify-keyspace-events": "Ex"}
            )
        }
    )
    return base.model_copy(update={"security_groups": groups, "elasticache": cache})


@dataclass
class Migrated:
    """A deployed local account whose migration succeeded, with ElastiCache's stand-in running."""

    setup: LocalSetup
    migration: RunResult
    stand_in: ElastiCacheEndpoint | None

    def state(self) -> ElastiCacheState:
        return elasticache_state(self.setup)


@contextmanager
def migrated_account(workdir: Path) -> Iterator[Migrated]:
    """Build the account, migrate it, publish the soak's metrics; ElastiCache's stand-in runs throughout."""
    with local_setup(workdir, decommission_account()) as setup, elasticache_running(setup) as stand_in:
        setup.engine.elasticache_operations.timings = TEST_TIMINGS
        migration = setup.run(name="migration")
        assert migration.described["status"] == "SUCCEEDED", migration.described.get("cause")
        publish_soak_metrics(setup, migration.described["stopDate"])
        yield Migrated(setup, migration, stand_in)


def _exists(call: Any, **arguments: Any) -> bool:
    try:
        call(**arguments)
    except ClientError:
        return False
    return True


def rebuild_elasticache(migrated: Migrated) -> None:
    """Put the account's ElastiCache back as the description has it, without snapshots or exports:
    a fresh start for the next decommission (in-flight operations are let finish first)."""
    setup = migrated.setup
    engine, account = setup.engine, setup.account
    assert account.description is not None
    cache = account.description.elasticache
    operations = engine.elasticache_operations
    operations.clock.advance(10_000)
    operations.tick()
    client, ec2 = engine.client("elasticache"), engine.client("ec2")
    for snapshot in client.describe_snapshots()["Snapshots"]:
        client.delete_snapshot(SnapshotName=snapshot["SnapshotName"])
    s3 = engine.client("s3")
    bucket = export_bucket_name(account)
    if _exists(s3.head_bucket, Bucket=bucket):
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents") or []:
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    # ElastiCache's security group, and the rule of the clients' group naming it.
    name = cache.security_groups[0]
    group_id = account.security_groups[name]
    if not _exists(ec2.describe_security_groups, GroupIds=[group_id]):
        described = next(g for g in account.description.security_groups if g.name == name)
        group_id = ec2.create_security_group(
            GroupName=name, Description=described.description or name, VpcId=account.vpc_id
        )["GroupId"]
        account.security_groups[name] = group_id
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "UserIdGroupPairs": [{"GroupId": account.client_group_id, "Description": "clients"}],
                }
            ],
        )
    clients = ec2.describe_security_groups(GroupIds=[account.client_group_id])["SecurityGroups"][0]
    named = any(
        pair.get("GroupId") == group_id
        for permission in clients.get("IpPermissionsEgress", [])
        for pair in permission.get("UserIdGroupPairs", [])
    )
    if not named:
        ec2.authorize_security_group_egress(
            GroupId=account.client_group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 6379,
                    "ToPort": 6379,
                    "UserIdGroupPairs": [{"GroupId": group_id, "Description": "to ElastiCache"}],
                }
            ],
        )
    assert cache.subnet_group is not None
    assert cache.parameter_group is not None
    if not _exists(client.describe_cache_subnet_groups, CacheSubnetGroupName=cache.subnet_group.name):
        client.create_cache_subnet_group(
            CacheSubnetGroupName=cache.subnet_group.name,
            CacheSubnetGroupDescription=cache.subnet_group.name,
            SubnetIds=[account.subnets[subnet] for subnet in cache.subnet_group.subnets],
        )
    if not _exists(client.describe_cache_parameter_groups, CacheParameterGroupName=PARAMETER_GROUP):
        client.create_cache_parameter_group(
            CacheParameterGroupName=PARAMETER_GROUP,
            CacheParameterGroupFamily="redis7",
            Description=PARAMETER_GROUP,
        )
        client.modify_cache_parameter_group(
            CacheParameterGroupName=PARAMETER_GROUP,
            ParameterNameValues=[
                {"ParameterName": k, "ParameterValue": v} for k, v in cache.parameter_group.parameters.items()
            ],
        )
    assert account.replication_group_id is not None
    if not _exists(client.describe_replication_groups, ReplicationGroupId=account.replication_group_id):
        client.create_replication_group(
            ReplicationGroupId=account.replication_group_id,
            ReplicationGroupDescription=cache.description or account.replication_group_id,
            Engine=cache.engine,
            EngineVersion=cache.engine_version or "7.1",
            CacheNodeType=cache.node_type or "cache.t4g.small",
            NumCacheClusters=cache.node_count,
            CacheSubnetGroupName=cache.subnet_group.name,
            CacheParameterGroupName=PARAMETER_GROUP,
            SecurityGroupIds=[group_id],
            TransitEncryptionEnabled=True,
            AuthToken=str(account.elasticache_auth_token),
            Tags=[{"Key": k, "Value": v} for k, v in cache.tags.items()],
        )
        # The names the account gave it (as build_account does): the stand-in answers those.
        reader, nodes = cache.group_endpoints()
        engine.name_elasticache_endpoint(account.replication_group_id, cache.endpoint, reader, nodes)
    secrets = engine.client("secretsmanager")
    if account.old_auth_secret_arn and secrets.describe_secret(SecretId=account.old_auth_secret_arn).get(
        "DeletedDate"
    ):
        secrets.restore_secret(SecretId=account.old_auth_secret_arn)


def all_gone(state: ElastiCacheState) -> bool:
    """Everything the decommission deletes is deleted, the secret scheduled, the final snapshot kept."""
    return (
        state.replication_group is None
        and not state.subnet_group
        and not state.parameter_group
        and not any(state.security_groups.values())
        and state.secret_scheduled_for_deletion is True
        and list(state.snapshots.values()) == ["available"]
    )


def left_of(run: RunResult) -> list[str]:
    """What a DecommissionIncomplete names as left (the note that the check did not run left out)."""
    left = json.loads(run.described["cause"])["left"]
    return [line for line in left if not line.startswith("the check after")]


def decommission_task_states(asl: dict[str, Any]) -> list[str]:
    """Every Task state reachable from CheckDecommissionPreconditions, in file order."""
    states = asl["States"]
    seen: set[str] = set()
    pending = ["CheckDecommissionPreconditions"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        pending += [state[key] for key in ("Next", "Default") if key in state]
        pending += [rule["Next"] for rule in state.get("Choices", [])]
        pending += [catcher["Next"] for catcher in state.get("Catch", [])]
    return [name for name, state in states.items() if name in seen and state["Type"] == "Task"]
