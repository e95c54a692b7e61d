"""Client listing: CLIENT LIST parsed, ElastiCache's own connections told apart, each address mapped
to what it is through EC2 network interfaces (moto), and the nodes of a replication group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from redis_migration.clients.connected import (
    FunctionNetwork,
    RedisConnection,
    elasticache_own,
    find_interfaces,
    instance_names,
    node_addresses,
    origin_of,
    parse_client_list,
)

CLIENT_LIST = (
    "id=3 addr=10.42.1.50:51234 laddr=10.42.1.9:6379 fd=8 name= age=120 idle=2 flags=N db=0 sub=0 psub=0 "
    "ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 "
    "tot-mem=1800 events=r cmd=get user=default redir=-1 resp=2 lib-name=redis-py lib-ver=5.0.1\n"
    "id=4 addr=10.42.1.50:51240 fd=9 name= age=30 idle=30 flags=N db=0 cmd=set user=default\n"
    "id=5 addr=10.42.2.77:40000 fd=10 name=worker age=9000 idle=1 flags=N db=2 cmd=lpush\n"
    "id=6 addr=10.42.1.60:40001 laddr=10.42.1.9:6379 fd=11 name= age=5 idle=5 flags=N db=0 cmd=hgetall\n"
    "id=7 addr=192.168.9.9:40002 laddr=10.42.1.9:6379 fd=12 name= age=5 idle=0 flags=N db=0 cmd=ping\n"
    "id=8 addr=10.42.1.61:40003 laddr=10.42.1.9:6379 fd=13 name= age=5 idle=0 flags=N db=0 cmd=get\n"
    "id=9 addr=10.42.1.9:40004 fd=14 name=redis-migration age=1 idle=0 flags=N db=0 cmd=client|list\n"
)


def test_client_list_lines_are_parsed() -> None:
    connections = parse_client_list(CLIENT_LIST)
    assert [c.id for c in connections] == [3, 4, 5, 6, 7, 8, 9]
    first = connections[0]
    assert (first.ip, first.port, first.age_seconds, first.idle_seconds, first.last_command) == (
        "10.42.1.50",
        51234,
        120,
        2,
        "get",
    )
    assert first.lib_name == "redis-py"
    assert first.flags == "N"
    assert connections[2].name == "worker"
    assert connections[2].db == 2
    assert parse_client_list("id=1 addr=[::1]:5000 name=x cmd=get\n")[0].ip == "::1"


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def test_addresses_map_to_lambda_interfaces_instances_and_tasks(ec2: Any) -> None:
    # Given a VPC with a Lambda interface shared by the functions of one subnet and group, the
    # Redis instance (a worker runs on it), another instance, and an ECS task's interface
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.2.0/24")["Subnet"]["SubnetId"]
    clients = ec2.create_security_group(GroupName="clients", Description="c", VpcId=vpc)["GroupId"]
    ec2.create_network_interface(
        SubnetId=subnet_a,
        Groups=[clients],
        PrivateIpAddress="10.42.1.50",
        Description="AWS Lambda VPC ENI-campaign-worker-001-4f3e2a1b",
    )
    ec2.create_network_interface(
        SubnetId=subnet_a,
        Groups=[clients],
        PrivateIpAddress="10.42.1.60",
        Description="arn:aws:ecs:us-east-1:123456789012:attachment/0b1c2d3e",
    )
    redis_host = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet_b, PrivateIpAddress="10.42.2.77",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "asterisk"}]}],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    other = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet_a, PrivateIpAddress="10.42.1.61"
    )["Instances"][0]["InstanceId"]
    connections = parse_client_list(CLIENT_LIST)
    functions = {
        "campaign-worker-001": FunctionNetwork(subnet_ids=[subnet_a, subnet_b], security_group_ids=[clients]),
        "campaign-worker-002": FunctionNetwork(subnet_ids=[subnet_a], security_group_ids=[clients]),
        "campaign-report": FunctionNetwork(subnet_ids=[subnet_a], security_group_ids=[]),
    }
    # When the addresses are looked up
    interfaces = find_interfaces(ec2, (c.ip for c in connections))
    names = instance_names(ec2, [redis_host, other])
    origins = {ip: origin_of(interfaces.get(ip), functions, names) for ip in {c.ip for c in connections}}
    # Then the Lambda interface names every function that shares it: Lambda says no more
    assert origins["10.42.1.50"].kind == "lambda"
    assert origins["10.42.1.50"].functions == ["campaign-worker-001", "campaign-worker-002"]
    # And the instances, the task and the stranger are told apart
    assert origins["10.42.2.77"].kind == "ec2-instance"
    assert origins["10.42.2.77"].instance_id == redis_host
    assert origins["10.42.2.77"].instance_name == "asterisk"
    assert origins["10.42.1.61"].kind == "ec2-instance"
    assert origins["10.42.1.61"].instance_id == other
    assert origins["10.42.1.60"].kind == "ecs-task"
    assert origins["192.168.9.9"].kind == "unknown"


def test_elasticaches_own_connections_are_those_no_client_could_make() -> None:
    # A replication link, a connection from the node's loopback, one from ElastiCache's own interface
    assert elasticache_own(RedisConnection(id=1, ip="10.0.0.9", port=1, flags="S"), None) == "replication"
    assert elasticache_own(RedisConnection(id=2, ip="127.0.0.1", port=1, last_command="info"), None) == (
        "elasticache"
    )
    own_interface = {"RequesterId": "amazon-elasticache", "InterfaceType": "interface"}
    assert elasticache_own(RedisConnection(id=3, ip="10.0.2.9", port=1), own_interface) == "elasticache"
    # Anything else is a client, whatever it runs or calls itself
    for connection in (
        RedisConnection(id=4, ip="10.0.1.5", port=1, last_command="ping"),
        RedisConnection(id=5, ip="10.0.1.6", port=1, name="redis-migration", last_command="info"),
    ):
        assert elasticache_own(connection, None) is None


def test_every_node_of_a_group_is_asked() -> None:
    group = {
        "NodeGroups": [
            {
                "PrimaryEndpoint": {"Address": "master.cache.abc.use1.cache.amazonaws.com"},
                "NodeGroupMembers": [
                    {"ReadEndpoint": {"Address": "cache-001.cache.abc.use1.cache.amazonaws.com"}},
                    {"ReadEndpoint": {"Address": "Cache-002.cache.abc.use1.cache.amazonaws.com"}},
                ],
            }
        ]
    }
    assert node_addresses(group) == [
        "cache-001.cache.abc.use1.cache.amazonaws.com",
        "cache-002.cache.abc.use1.cache.amazonaws.com",
    ]
    no_members = {"NodeGroups": [{"PrimaryEndpoint": {"Address": "master.x"}}]}
    assert node_addresses(no_members) == ["master.x"]


def test_many_addresses_are_looked_up_in_chunks(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/20")["Subnet"]["SubnetId"]
    addresses = [f"10.9.{i // 250}.{i % 250 + 4}" for i in range(230)]
    for address in addresses[::2]:
        ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=address)
    found = find_interfaces(ec2, addresses)
    assert sorted(found) == sorted(addresses[::2])
