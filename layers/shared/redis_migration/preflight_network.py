"""Preflight of the network: can the in-VPC functions reach the AWS APIs they call, which group gets the rule.

A Lambda function attached to a VPC has no public address, whatever its subnet's routes: it
reaches AWS APIs only through a NAT gateway (a ``0.0.0.0/0`` route to it) or through interface
VPC endpoints (with private DNS, so the SDK's default endpoint names resolve to them). Without
either, ProbeRedis times out reading the password (every migration rolls back) and RedisHealth
never publishes (its alarm fires).
https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-endpoints.html
https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html

The endpoints needed are those of the calls the in-VPC functions make (``IN_VPC_CALLS``; a unit
test derives the same list from the policies template.yaml gives those functions). CloudWatch is
not among them: the health metrics are written as embedded metric format to the function's log,
which Lambda ships outside the VPC.

The stack does not create endpoints itself: they are shared by everything in the VPC (an
endpoint with private DNS changes how every resource of the VPC reaches that service, and a
second one for the same service is refused), they cost per hour and per AZ, and deleting the
migration's stack would delete them under whatever came to rely on them. The refusal says
exactly which to create.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis_migration.aws import AwsClients, error_code
from redis_migration.errors import PreconditionFailed
from redis_migration.models import StackSettings

# Service (as in com.amazonaws.<region>.<service>) -> who calls it and why.
IN_VPC_CALLS: dict[str, str] = {
    "secretsmanager": "ProbeRedis and RedisHealth read the password, ListElastiCacheClients the AUTH token "
    "(secretsmanager:GetSecretValue)",
    "ec2": "RedisHealth finds the instance's private IP (ec2:DescribeInstances), ListElastiCacheClients "
    "names each client by its network interface (ec2:DescribeNetworkInterfaces)",
}
HTTPS = 443
# Route targets that may lead to a NAT elsewhere (an egress VPC, an appliance): not checkable here.
_UNCHECKABLE_TARGETS = (
    "TransitGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "VpcPeeringConnectionId",
    "CoreNetworkArn",
)


@dataclass
class NetworkCheck:
    """What the network preflight found: refusals, and what it could not verify."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def endpoint_service_name(region: str, service: str) -> str:
    """The service name of an interface endpoint (``com.amazonaws.<region>.<service>``)."""
    return f"com.amazonaws.{region}.{service}"


# Called from inside the VPC only by a consistent copy's baseline and copy back (the run's records).
S3_CALLS = (
    "RecordDataBaseline and CopyDataBack write and read the run's records bucket (s3:PutObject, "
    "s3:GetObject), in a consistent data copy"
)


def check_vpc_access(settings: StackSettings, aws: AwsClients, *, needs_s3: bool = False) -> NetworkCheck:
    """Each subnet of the in-VPC functions routes to a NAT, or the VPC has every endpoint they call
    (S3 too when ``needs_s3``: a gateway endpoint on their route tables, or an interface endpoint)."""
    check = NetworkCheck()
    subnet_ids = settings.probe_subnets
    if not subnet_ids:
        check.warnings.append(
            "PROBE_SUBNET_IDS is not set: the in-VPC functions' way to the AWS APIs was not checked"
        )
        return check
    try:
        subnets = aws.ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    except Exception as error:
        if error_code(error).startswith("InvalidSubnetID"):
            check.problems.append(f"the in-VPC functions' subnets ({', '.join(subnet_ids)}) do not all exist")
            return check
        raise
    vpc_id = str(subnets[0]["VpcId"])
    tables = [
        table
        for page in aws.ec2.get_paginator("describe_route_tables").paginate(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
        )
        for table in page["RouteTables"]
    ]
    without_egress = {str(subnet["SubnetId"]) for subnet in subnets if not _has_egress(subnet, tables, check)}
    isolated = [subnet_id for subnet_id in subnet_ids if subnet_id in without_egress]  # as configured
    if not isolated:
        return check
    region = settings.region or aws.ec2.meta.region_name
    endpoints = [
        endpoint
        for page in aws.ec2.get_paginator("describe_vpc_endpoints").paginate(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "vpc-endpoint-type", "Values": ["Interface"]},
            ]
        )
        for endpoint in page["VpcEndpoints"]
        if str(endpoint.get("State", "")).lower() in ("available", "pending")
    ]
    sources = settings.probe_security_groups
    cidrs = [
        ipaddress.ip_network(str(subnet["CidrBlock"])) for subnet in subnets if subnet["SubnetId"] in isolated
    ]
    missing: list[str] = []
    for service, why in IN_VPC_CALLS.items():
        name = endpoint_service_name(region, service)
        found = [endpoint for endpoint in endpoints if endpoint.get("ServiceName") == name]
        if not found:
            missing.append(f"{name} ({why})")
            continue
        endpoint = found[0]
        endpoint_id = endpoint.get("VpcEndpointId")
        if not endpoint.get("PrivateDnsEnabled"):
            check.problems.append(
                f"interface endpoint {endpoint_id} ({name}) has private DNS off: the functions' SDK calls "
                "the service's public name, which then does not lead to it; turn private DNS on"
            )
            continue
        groups = [str(group["GroupId"]) for group in endpoint.get("Groups", [])]
        if groups and not _allows_https(aws, groups, sources, cidrs):
            check.problems.append(
                f"interface endpoint {endpoint_id} ({name}): its security groups ({', '.join(groups)}) "
                f"do not allow tcp {HTTPS} from the in-VPC functions' groups "
                f"({', '.join(sources) or 'none'}) or subnets; add that rule"
            )
    isolated_tables = [_route_table(subnet_id, tables) for subnet_id in isolated]
    if needs_s3 and not _reaches_s3(
        aws, vpc_id, endpoint_service_name(region, "s3"), isolated_tables, endpoints
    ):
        missing.append(
            f"{endpoint_service_name(region, 's3')} ({S3_CALLS}; a gateway endpoint on the route tables of "
            f'{", ".join(isolated)} serves, at no charge; or start with "dataCopy": "warm" or "none", '
            "which record nothing from the VPC)"
        )
    if missing:
        check.problems.append(
            "the in-VPC functions (ProbeRedis, RedisHealth) run in subnet(s) "
            f"{', '.join(isolated)} of {vpc_id}, "
            "which have no route to a NAT gateway, and the VPC lacks the interface endpoint(s) they call: "
            + "; ".join(missing)
            + ". Create each with private DNS in those subnets, with a security group that allows tcp "
            f"{HTTPS} from {', '.join(sources) or 'the functions'} (aws ec2 create-vpc-endpoint "
            f"--vpc-endpoint-type Interface --vpc-id {vpc_id} --service-name <name> --subnet-ids "
            f"{' '.join(isolated)} --security-group-ids <group> --private-dns-enabled), or route "
            "0.0.0.0/0 from those subnets to a NAT gateway"
        )
    return check


def _reaches_s3(
    aws: AwsClients,
    vpc_id: str,
    name: str,
    isolated_tables: Sequence[Mapping[str, Any] | None],
    interface_endpoints: Sequence[Mapping[str, Any]],
) -> bool:
    """An S3 interface endpoint, or a gateway endpoint on the route table of every isolated subnet."""
    if any(endpoint.get("ServiceName") == name for endpoint in interface_endpoints):
        return True
    gateways = [
        endpoint
        for page in aws.ec2.get_paginator("describe_vpc_endpoints").paginate(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "service-name", "Values": [name]},
                {"Name": "vpc-endpoint-type", "Values": ["Gateway"]},
            ]
        )
        for endpoint in page["VpcEndpoints"]
        if str(endpoint.get("State", "")).lower() in ("available", "pending")
    ]
    routed = {str(table_id) for endpoint in gateways for table_id in endpoint.get("RouteTableIds", [])}
    return all(table is not None and str(table.get("RouteTableId")) in routed for table in isolated_tables)


def _route_table(subnet_id: str, tables: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The subnet's route table: its explicit association, else the VPC's main table."""
    return next(
        (t for t in tables for a in t.get("Associations", []) if a.get("SubnetId") == subnet_id),
        next((t for t in tables for a in t.get("Associations", []) if a.get("Main")), None),
    )


def _has_egress(subnet: Mapping[str, Any], tables: Sequence[Mapping[str, Any]], check: NetworkCheck) -> bool:
    """Whether the subnet's route table sends ``0.0.0.0/0`` somewhere a Lambda function can use."""
    subnet_id = subnet["SubnetId"]
    routes = (_route_table(str(subnet_id), tables) or {}).get("Routes", [])
    default = next(
        (r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("State") != "blackhole"),
        None,
    )
    if default is None:
        return False
    if default.get("NatGatewayId"):
        return True
    via = next((str(default[key]) for key in _UNCHECKABLE_TARGETS if default.get(key)), None)
    if via is not None:
        check.warnings.append(
            f"subnet {subnet_id} sends 0.0.0.0/0 to {via}: whether that reaches the AWS APIs was not checked"
        )
        return True
    # An internet gateway: a Lambda function's network interface has no public address to use it.
    return False


def _allows_https(
    aws: AwsClients,
    groups: list[str],
    sources: Iterable[str],
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    wanted = set(sources)
    described = aws.ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"]
    for group in described:
        for permission in group.get("IpPermissions", []):
            protocol = str(permission.get("IpProtocol"))
            if protocol not in ("-1", "tcp", "6"):
                continue
            if protocol != "-1" and not permission.get("FromPort", 0) <= HTTPS <= permission.get(
                "ToPort", -1
            ):
                continue
            if wanted & {str(pair.get("GroupId")) for pair in permission.get("UserIdGroupPairs", [])}:
                return True
            ranges = [ipaddress.ip_network(str(r["CidrIp"])) for r in permission.get("IpRanges", [])]
            if cidrs and all(any(c.version == r.version and c.subnet_of(r) for r in ranges) for c in cidrs):  # type: ignore[arg-type]
                return True
    return False


def choose_redis_security_group(instance_id: str, group_ids: list[str], configured: str = "") -> str:
    """The instance's group that gets the Redis rule: the configured one, else its only one.

    EC2 does not promise an order for an instance's groups, so "the first" is not a choice.
    """
    if configured:
        if configured not in group_ids:
            raise PreconditionFailed(
                f"RedisSecurityGroupId {configured} is not one of instance {instance_id}'s security groups "
                f"({', '.join(group_ids)})"
            )
        return configured
    if len(group_ids) == 1:
        return group_ids[0]
    raise PreconditionFailed(
        f"instance {instance_id} has {len(group_ids)} security groups ({', '.join(sorted(group_ids))}); "
        "the one that gets the Redis rule is not guessed: set the stack parameter RedisSecurityGroupId "
        "to one of them"
    )
