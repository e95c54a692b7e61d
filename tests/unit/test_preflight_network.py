"""The network preflight against moto's EC2 (through the local engine): routes, endpoints, the Redis group."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.errors import PreconditionFailed
from redis_migration.models import StackSettings
from redis_migration.preflight_network import (
    IN_VPC_CALLS,
    check_vpc_access,
    choose_redis_security_group,
)

from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.template import load_template
from tests.conftest import TEMPLATE_PATH
from tests.unit.local_engine.conftest import FIXTURES


@dataclass
class Vpc:
    engine: LocalEngine
    ec2: Any
    vpc_id: str
    subnets: list[str]
    route_table: str
    function_group: str

    def settings(self) -> StackSettings:
        return StackSettings.model_validate(
            {
                "PROJECT_NAME": "campaign",
                "ENVIRONMENT": "dev",
                "AWS_REGION": "us-east-1",
                "PROBE_SUBNET_IDS": ",".join(self.subnets),
                "PROBE_SECURITY_GROUP_IDS": self.function_group,
            }
        )

    def check(self) -> Any:
        return check_vpc_access(self.settings(), AwsClients(factory=self.engine.client))

    def endpoint(self, service: str, *, private_dns: bool = True, https_from: str | None = None) -> str:
        group = self.ec2.create_security_group(
            GroupName=f"endpoint-{service}", Description="endpoint", VpcId=self.vpc_id
        )["GroupId"]
        if https_from is not None:
            self.ec2.authorize_security_group_ingress(
                GroupId=group,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 443,
                        "ToPort": 443,
                        "UserIdGroupPairs": [{"GroupId": https_from}],
                    }
                ],
            )
        return str(
            self.ec2.create_vpc_endpoint(
                VpcId=self.vpc_id,
                ServiceName=f"com.amazonaws.us-east-1.{service}",
                VpcEndpointType="Interface",
                SubnetIds=self.subnets,
                SecurityGroupIds=[group],
                PrivateDnsEnabled=private_dns,
            )["VpcEndpoint"]["VpcEndpointId"]
        )


@pytest.fixture
def vpc() -> Iterator[Vpc]:
    """Two private subnets whose route table has no default route (no NAT), and the functions' group."""
    with LocalEngine(FIXTURES) as engine:
        ec2 = engine.client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.9.{n}.0/24")["Subnet"]["SubnetId"] for n in (1, 2)
        ]
        table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        for subnet in subnets:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        group = ec2.create_security_group(GroupName="functions", Description="fn", VpcId=vpc_id)["GroupId"]
        yield Vpc(engine, ec2, vpc_id, subnets, table, group)


def test_no_nat_and_no_endpoints_names_each_endpoint_to_create(vpc: Vpc) -> None:
    check = vpc.check()
    (problem,) = check.problems
    assert f"subnet(s) {', '.join(vpc.subnets)} of {vpc.vpc_id}" in problem
    assert "com.amazonaws.us-east-1.secretsmanager (ProbeRedis and RedisHealth read the password" in problem
    assert "com.amazonaws.us-east-1.ec2 (RedisHealth finds the instance's private IP" in problem
    assert f"--vpc-id {vpc.vpc_id}" in problem


def test_an_internet_gateway_route_is_no_way_out_for_a_function(vpc: Vpc) -> None:
    gateway = vpc.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    vpc.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc.vpc_id)
    vpc.ec2.create_route(RouteTableId=vpc.route_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    assert "no route to a NAT gateway" in vpc.check().problems[0]


def test_a_nat_gateway_route_is_enough(vpc: Vpc) -> None:
    allocation = vpc.ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = vpc.ec2.create_nat_gateway(SubnetId=vpc.subnets[0], AllocationId=allocation)["NatGateway"]
    vpc.ec2.create_route(
        RouteTableId=vpc.route_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"]
    )
    check = vpc.check()
    assert (check.problems, check.warnings) == ([], [])


def test_endpoints_with_private_dns_reachable_from_the_functions_are_enough(vpc: Vpc) -> None:
    for service in IN_VPC_CALLS:
        vpc.endpoint(service, https_from=vpc.function_group)
    assert vpc.check().problems == []


def test_a_consistent_copy_needs_s3_from_the_vpc_and_a_gateway_endpoint_serves(vpc: Vpc) -> None:
    # Given the interface endpoints every in-VPC function needs, and no way to S3
    for service in IN_VPC_CALLS:
        vpc.endpoint(service, https_from=vpc.function_group)
    aws = AwsClients(factory=vpc.engine.client)

    # Then a consistent copy (its baseline and copy back use the records bucket) is refused, naming S3
    (problem,) = check_vpc_access(vpc.settings(), aws, needs_s3=True).problems
    assert "com.amazonaws.us-east-1.s3 (RecordDataBaseline and CopyDataBack" in problem

    # And a gateway endpoint for S3 on the subnets' route table is enough
    vpc.ec2.create_vpc_endpoint(
        VpcId=vpc.vpc_id,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[vpc.route_table],
    )
    assert check_vpc_access(vpc.settings(), aws, needs_s3=True).problems == []


def test_an_endpoint_without_private_dns_or_without_a_rule_for_the_functions_is_named(vpc: Vpc) -> None:
    no_dns = vpc.endpoint("secretsmanager", private_dns=False, https_from=vpc.function_group)
    closed = vpc.endpoint("ec2")
    problems = vpc.check().problems
    assert any(
        f"interface endpoint {no_dns} (com.amazonaws.us-east-1.secretsmanager) has private DNS off" in p
        for p in problems
    )
    assert any(
        f"interface endpoint {closed} (com.amazonaws.us-east-1.ec2): its security groups" in p
        and f"do not allow tcp 443 from the in-VPC functions' groups ({vpc.function_group})" in p
        for p in problems
    )


def test_the_endpoints_are_those_of_the_calls_the_in_vpc_functions_may_make() -> None:
    # The services the template lets the in-VPC functions call (their own statements; the managed
    # AWSLambdaVPCAccessExecutionRole is Lambda's, for the network interfaces, not the code's).
    template = load_template(TEMPLATE_PATH)
    services: set[str] = set()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::Function" or "VpcConfig" not in properties:
            continue
        for policy in properties.get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                services |= {action.split(":")[0] for action in actions}
    # S3 only for a consistent copy's baseline and copy back (checked then: needs_s3, S3_CALLS).
    assert services == {*IN_VPC_CALLS, "s3"}


def test_the_redis_group_is_the_configured_one_or_the_only_one() -> None:
    assert choose_redis_security_group("i-1", ["sg-a"]) == "sg-a"
    assert choose_redis_security_group("i-1", ["sg-b", "sg-a"], "sg-a") == "sg-a"
    with pytest.raises(
        PreconditionFailed, match=r"has 2 security groups \(sg-a, sg-b\).*RedisSecurityGroupId"
    ):
        choose_redis_security_group("i-1", ["sg-b", "sg-a"])
    with pytest.raises(PreconditionFailed, match="RedisSecurityGroupId sg-c is not one of instance i-1's"):
        choose_redis_security_group("i-1", ["sg-a"], "sg-c")
