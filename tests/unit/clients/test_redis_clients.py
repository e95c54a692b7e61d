"""Client listing: CLIENT LIST parsed, each address mapped to what it is through EC2 network
interfaces (moto), and every client the migration will not switch named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from redis_migration.clients.connected import (
    FunctionNetwork,
    RedisConnection,
    describe_clients,
    find_interfaces,
    instance_names,
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
    connections = [c for c in parse_client_list(CLIENT_LIST) if c.name != "redis-migration"]
    functions = {
        "campaign-worker-001": FunctionNetwork(subnet_ids=[subnet_a, subnet_b], security_group_ids=[clients]),
        "campaign-worker-002": FunctionNetwork(subnet_ids=[subnet_a], security_group_ids=[clients]),
        "campaign-report": FunctionNetwork(subnet_ids=[subnet_a], security_group_ids=[]),
    }
    # When the addresses are looked up and described, with worker-001 switched and not worker-002
    interfaces = find_interfaces(ec2, (c.ip for c in connections))
    names = instance_names(ec2, [redis_host, other])
    listing = describe_clients(
        "campaign-redis.abc123.0001.use1.cache.amazonaws.com",
        connections,
        interfaces,
        functions,
        ["campaign-worker-001"],
        instance_id=redis_host,
        instance_names=names,
    )
    by_ip = {group.ip: group for group in listing.clients}
    # Then the Lambda interface names the functions that share it, and only part of them moves
    lambda_group = by_ip["10.42.1.50"]
    assert lambda_group.origin.kind == "lambda"
    assert lambda_group.origin.functions == ["campaign-worker-001", "campaign-worker-002"]
    assert lambda_group.connections == 2
    assert lambda_group.switched == "partly"
    assert "campaign-worker-002" in lambda_group.note
    # And the worker on the Redis instance, the other instance, the task and the stranger are named
    assert by_ip["10.42.2.77"].origin.kind == "ec2-instance"
    assert by_ip["10.42.2.77"].origin.instance_name == "asterisk"
    assert "hostServices" in by_ip["10.42.2.77"].note
    assert by_ip["10.42.1.61"].origin.kind == "ec2-instance"
    assert by_ip["10.42.1.61"].origin.instance_id == other
    assert by_ip["10.42.1.60"].origin.kind == "ecs-task"
    assert by_ip["192.168.9.9"].origin.kind == "unknown"
    assert by_ip["192.168.9.9"].switched == "unknown"
    assert listing.connections == 6
    assert len(listing.not_switched) == 5
    assert any(
        "EC2 instance" in line and "(asterisk)" in line and "lpush" in line for line in listing.not_switched
    )


def test_a_client_whose_functions_all_move_is_not_named() -> None:
    connection = RedisConnection(id=1, ip="10.0.0.5", port=1)
    interface = {
        "NetworkInterfaceId": "eni-1",
        "InterfaceType": "lambda",
        "SubnetId": "subnet-a",
        "Groups": [{"GroupId": "sg-1"}],
        "Description": "AWS Lambda VPC ENI-f-1",
    }
    functions = {"f": FunctionNetwork(subnet_ids=["subnet-a"], security_group_ids=["sg-1"])}
    listing = describe_clients("e", [connection], {"10.0.0.5": interface}, functions, ["f"])
    assert listing.clients[0].switched == "yes"
    assert listing.not_switched == []


def test_many_addresses_are_looked_up_in_chunks(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/20")["Subnet"]["SubnetId"]
    addresses = [f"10.9.{i // 250}.{i % 250 + 4}" for i in range(230)]
    for address in addresses[::2]:
        ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=address)
    found = find_interfaces(ec2, addresses)
    assert sorted(found) == sorted(addresses[::2])
