"""The rehearsal's ElastiCache as AWS shows it: every node its own server, clients at their own addresses.

A replication group of two nodes (a primary and a replica), its names leading to the right node, a
client acting as a Lambda function connecting from the function's Hyperplane interface, another
acting as an address, ElastiCache's monitoring connections on each node (counted in
CurrConnections), and the idle sockets of old execution environments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_migration.clients.connected import parse_client_list

from redis_migration_ops.account.description import AccountDescription, sample_account
from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.elasticache.endpoint import (
    ElastiCacheEndpoint,
    start_elasticache_endpoint,
)
from redis_migration_ops.local_engine.elasticache.monitoring import MONITORING_CONNECTIONS
from redis_migration_ops.rehearsal.local_account import LocalAccount, build_account

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "local_engine" / "fixtures"


def two_node_account(clients: int = 2) -> AccountDescription:
    description = sample_account(clients)
    return description.model_copy(
        update={"elasticache": description.elasticache.model_copy(update={"node_count": 2})}
    )


class Group:
    def __init__(self, engine: LocalEngine, account: LocalAccount, stand_in: ElastiCacheEndpoint) -> None:
        self.engine = engine
        self.account = account
        self.stand_in = stand_in
        described = engine.client("elasticache").describe_replication_groups(
            ReplicationGroupId=account.replication_group_id
        )["ReplicationGroups"][0]
        node_group = described["NodeGroups"][0]
        self.reader = node_group["ReaderEndpoint"]["Address"]
        members = node_group["NodeGroupMembers"]
        self.node_names = {member["CurrentRole"]: member["ReadEndpoint"]["Address"] for member in members}

    def client(self, host: str) -> Any:
        """A client as the account's functions configure theirs: the name, TLS, the token."""
        return redis.Redis(
            host=host,
            port=6379,
            password=self.account.elasticache_auth_token,
            ssl=True,
            socket_timeout=5,
            protocol=2,
            driver_info=None,
        )

    def clients_of(self, node: int) -> list[Any]:
        admin: Any
        with contextlib.closing(self.stand_in.admin_client(node=node)) as admin:
            raw = admin.execute_command("CLIENT", "LIST")
        return parse_client_list(raw.decode())


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    with LocalEngine(FIXTURES) as engine:
        account = build_account(engine, two_node_account())
        with start_elasticache_endpoint(engine, account, tmp_path / "elasticache") as stand_in:
            yield Group(engine, account, stand_in)


def test_each_node_and_the_reader_answer_on_their_names(group: Group) -> None:
    # Given a replication group of two nodes
    assert len(group.stand_in.nodes) == 2
    # When a client connects by each name the group answers
    roles = {
        name: group.client(name).execute_command("ROLE")[0]
        for name in [group.account.elasticache_endpoint, group.reader, *group.node_names.values()]
    }
    # Then the primary endpoint and the primary's node name lead to the primary, the reader
    # endpoint and the replica's node name to the replica
    assert roles == {
        group.account.elasticache_endpoint: b"master",
        group.node_names["primary"]: b"master",
        group.node_names["replica"]: b"slave",
        group.reader: b"slave",
    }
    # And the replica is a real one: it serves what the primary was written, and refuses writes
    group.client(group.account.elasticache_endpoint).set("campaign:1", "dialing")
    replica = group.client(group.reader)
    for _ in range(100):
        if replica.get("campaign:1") == b"dialing":
            break
        group.client(group.account.elasticache_endpoint).wait(1, 1000)
    assert replica.get("campaign:1") == b"dialing"
    with pytest.raises(redis.ReadOnlyError):
        replica.set("campaign:2", "x")


def test_a_client_acting_as_a_function_connects_from_its_lambda_interface(group: Group) -> None:
    worker, other, analytics = "campaign-worker-001", "campaign-worker-002", "analytics-cache-user"
    # When the function's code writes to ElastiCache
    with group.engine.acting_as_function(worker):
        writer = group.client(group.account.elasticache_endpoint)
        writer.set("call:1", "ringing")
    # Then the primary sees the connection from the address of a Lambda interface of the function's
    # first subnet with exactly its security groups
    address = group.engine.function_address(worker)
    connections = [c for c in group.clients_of(0) if c.ip == address]
    assert len(connections) == 1
    assert connections[0].last_command == "set"
    interfaces = group.engine.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": [address]}]
    )["NetworkInterfaces"]
    configuration = group.engine.client("lambda").get_function_configuration(FunctionName=worker)
    assert [i["InterfaceType"] for i in interfaces] == ["lambda"]
    assert interfaces[0]["SubnetId"] == configuration["VpcConfig"]["SubnetIds"][0]
    assert [g["GroupId"] for g in interfaces[0]["Groups"]] == configuration["VpcConfig"]["SecurityGroupIds"]
    assert interfaces[0]["Description"].startswith("AWS Lambda VPC ENI-")
    writer.close()
    # And the functions with the same subnets and security groups share it (Lambda names no one)
    assert group.engine.function_address(other) == group.engine.function_address(analytics) == address
    # And a function outside any VPC cannot reach ElastiCache at all
    with group.engine.acting_as_function("campaign-billing-report"), pytest.raises(redis.ConnectionError):
        group.client(group.account.elasticache_endpoint).ping()


def test_a_reader_acting_as_an_address_shows_on_the_replica_only(group: Group) -> None:
    # When a client that is no Lambda function (an ECS task's address) reads through the reader endpoint
    with group.engine.acting_as_address("10.42.2.77"):
        reader = group.client(group.reader)
        reader.get("campaign:1")
    # Then the replica's CLIENT LIST has it, the primary's does not
    assert [c.last_command for c in group.clients_of(1) if c.ip == "10.42.2.77"] == ["get"]
    assert [c for c in group.clients_of(0) if c.ip == "10.42.2.77"] == []
    reader.close()


def test_every_node_has_elasticache_monitoring_connections_counted_in_currconnections(group: Group) -> None:
    # Given no client at all
    for node in range(2):
        # Then each node has ElastiCache's own connections, from its loopback, never idle for long
        own = [
            c for c in group.clients_of(node) if c.ip == "127.0.0.1" and c.last_command in ("ping", "info")
        ]
        assert len(own) == MONITORING_CONNECTIONS
        assert max(c.idle_seconds for c in own) < 30
    # And CurrConnections counts them, as AWS's does: a node without clients never reports 0
    now = datetime.now(UTC)
    for member in group.stand_in.nodes:

        def sample(node: int = member.index) -> int | None:
            return group.stand_in.connected_clients(node)

        group.engine.elasticache_metrics.watch_node(f"campaign-redis-00{member.index + 1}", "0001", sample)
    statistics = group.engine.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/ElastiCache",
        MetricName="CurrConnections",
        Dimensions=[
            {"Name": "CacheClusterId", "Value": "campaign-redis-002"},
            {"Name": "CacheNodeId", "Value": "0001"},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=60,
        Statistics=["Minimum"],
    )["Datapoints"]
    assert statistics
    assert min(point["Minimum"] for point in statistics) >= MONITORING_CONNECTIONS


def test_old_execution_environments_leave_idle_sockets(group: Group) -> None:
    # Given a function whose old execution environment used ElastiCache before a configuration change
    address = group.engine.function_address("campaign-worker-001")
    assert address is not None
    group.stand_in.leave_idle_connections(address, 2)
    # Then its sockets stay connected, last command GET, for as long as nothing closes them
    idle = [c for c in group.clients_of(0) if c.ip == address]
    assert len(idle) == 2
    assert {c.last_command for c in idle} == {"get"}
