"""Reading what belongs to the replication group: the facts the deletion and the way back rely on.

Read-only. Everything is read by the names the stack allows the decommission to delete (its
parameters), so the IAM policy of every reader names real resources, never ``*`` where AWS offers
resource-level permissions.
"""

from __future__ import annotations

import json
from typing import Any

from redis_migration.aws import AwsClients, error_code
from redis_migration.clients.endpoints import endpoint_addresses
from redis_migration.decommission.models import (
    ParameterGroupFacts,
    ReferencingRule,
    ReplicationGroupFacts,
    Rule,
    SecurityGroupFacts,
    SubnetGroupFacts,
)

# ElastiCache's own network interfaces (one per node): what holds its security groups while the
# nodes exist. https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/VPCs.html
ELASTICACHE_REQUESTER = "amazon-elasticache"
REPLICATION_GROUP_GONE = frozenset({"ReplicationGroupNotFoundFault", "ReplicationGroupNotFound"})
SUBNET_GROUP_GONE = frozenset({"CacheSubnetGroupNotFoundFault", "CacheSubnetGroupNotFound"})
PARAMETER_GROUP_GONE = frozenset({"CacheParameterGroupNotFound", "CacheParameterGroupNotFoundFault"})
SNAPSHOT_GONE = frozenset({"SnapshotNotFoundFault", "SnapshotNotFound"})
SECURITY_GROUP_GONE = frozenset({"InvalidGroup.NotFound", "InvalidGroupId.NotFound"})


def describe_replication_group(replication_group_id: str, aws: AwsClients) -> dict[str, Any] | None:
    """The replication group as DescribeReplicationGroups answers, or None when it does not exist."""
    try:
        groups = aws.elasticache.describe_replication_groups(ReplicationGroupId=replication_group_id)
    except Exception as error:
        if error_code(error) in REPLICATION_GROUP_GONE:
            return None
        raise
    found = groups.get("ReplicationGroups") or []
    return dict(found[0]) if found else None


def primary_endpoint(group: dict[str, Any]) -> str | None:
    configuration = (group.get("ConfigurationEndpoint") or {}).get("Address")
    if configuration:
        return str(configuration).lower()
    for node_group in group.get("NodeGroups") or []:
        address = (node_group.get("PrimaryEndpoint") or {}).get("Address")
        if address:
            return str(address).lower()
    return None


def _port(group: dict[str, Any]) -> int:
    for endpoint in [group.get("ConfigurationEndpoint")] + [
        ng.get("PrimaryEndpoint") for ng in group.get("NodeGroups") or []
    ]:
        if isinstance(endpoint, dict) and endpoint.get("Port"):
            return int(endpoint["Port"])
    return 6379


def elasticache_tags(arn: str, aws: AwsClients) -> dict[str, str]:
    """The tags of an ElastiCache resource (CloudFormation's ``aws:cloudformation:*`` included)."""
    listed = aws.elasticache.list_tags_for_resource(ResourceName=arn).get("TagList") or []
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in listed}


def replication_group_facts(
    group: dict[str, Any], node_group_facts: dict[str, Any], aws: AwsClients
) -> ReplicationGroupFacts:
    """The facts of a described group; ``node_group_facts``: one member cluster's description."""
    members = [str(member) for member in group.get("MemberClusters") or []]
    shards = len(group.get("NodeGroups") or []) or 1
    security_groups = [
        str(item["SecurityGroupId"])
        for item in node_group_facts.get("SecurityGroups") or []
        if item.get("Status", "active") == "active"
    ]
    return ReplicationGroupFacts(
        replication_group_id=str(group["ReplicationGroupId"]),
        arn=str(group["ARN"]),
        description=str(group.get("Description") or ""),
        status=str(group.get("Status") or "unknown"),
        engine=str(group.get("Engine") or node_group_facts.get("Engine") or "redis"),
        engine_version=_str_or_none(node_group_facts.get("EngineVersion") or group.get("EngineVersion")),
        node_type=str(group.get("CacheNodeType") or node_group_facts.get("CacheNodeType") or "unknown"),
        node_count=len(members) or 1,
        shard_count=shards,
        cluster_mode=str(
            group.get("ClusterMode") or ("enabled" if group.get("ClusterEnabled") else "disabled")
        ),
        member_clusters=members,
        endpoints=endpoint_addresses(group),
        primary_endpoint=primary_endpoint(group),
        port=_port(group),
        subnet_group=_str_or_none(
            node_group_facts.get("CacheSubnetGroupName") or group.get("CacheSubnetGroupName")
        ),
        parameter_group=_str_or_none(
            (node_group_facts.get("CacheParameterGroup") or {}).get("CacheParameterGroupName")
            or group.get("CacheParameterGroupName")
        ),
        security_group_ids=security_groups or [str(g) for g in group.get("SecurityGroupIds") or []],
        transit_encryption=bool(group.get("TransitEncryptionEnabled")),
        at_rest_encryption=bool(group.get("AtRestEncryptionEnabled")),
        auth_token_enabled=bool(group.get("AuthTokenEnabled")),
        kms_key_id=_str_or_none(group.get("KmsKeyId")),
        multi_az=str(group.get("MultiAZ", "disabled")) == "enabled",
        automatic_failover=str(group.get("AutomaticFailover", "disabled")) in {"enabled", "enabling"},
        snapshot_retention_limit=int(group.get("SnapshotRetentionLimit") or 0),
        tags=elasticache_tags(str(group["ARN"]), aws),
    )


def member_cluster(group: dict[str, Any], aws: AwsClients) -> dict[str, Any]:
    """The first member cluster's description: subnet group, parameter group, security groups."""
    members = group.get("MemberClusters") or []
    if not members:
        return {}
    try:
        clusters = aws.elasticache.describe_cache_clusters(CacheClusterId=str(members[0]))["CacheClusters"]
    except Exception as error:
        if error_code(error) in {"CacheClusterNotFound", "CacheClusterNotFoundFault"}:
            return {}
        raise
    return dict(clusters[0]) if clusters else {}


def subnet_group_exists(name: str, aws: AwsClients) -> bool:
    try:
        aws.elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=name)
    except Exception as error:
        if error_code(error) in SUBNET_GROUP_GONE:
            return False
        raise
    return True


def parameter_group_exists(name: str, aws: AwsClients) -> bool:
    try:
        aws.elasticache.describe_cache_parameter_groups(CacheParameterGroupName=name)
    except Exception as error:
        if error_code(error) in PARAMETER_GROUP_GONE:
            return False
        raise
    return True


def subnet_group_facts(name: str, aws: AwsClients) -> SubnetGroupFacts | None:
    try:
        groups = aws.elasticache.describe_cache_subnet_groups(CacheSubnetGroupName=name)["CacheSubnetGroups"]
    except Exception as error:
        if error_code(error) in SUBNET_GROUP_GONE:
            return None
        raise
    group = groups[0]
    arn = group.get("ARN")
    return SubnetGroupFacts(
        name=name,
        description=str(group.get("CacheSubnetGroupDescription") or name),
        subnet_ids=[str(subnet["SubnetIdentifier"]) for subnet in group.get("Subnets") or []],
        tags=elasticache_tags(str(arn), aws) if arn else {},
    )


def parameter_group_facts(name: str, aws: AwsClients) -> ParameterGroupFacts | None:
    try:
        groups = aws.elasticache.describe_cache_parameter_groups(CacheParameterGroupName=name)[
            "CacheParameterGroups"
        ]
    except Exception as error:
        if error_code(error) in PARAMETER_GROUP_GONE:
            return None
        raise
    group = groups[0]
    parameters: dict[str, str] = {}
    paginator = aws.elasticache.get_paginator("describe_cache_parameters")
    for page in paginator.paginate(CacheParameterGroupName=name, Source="user"):
        for parameter in page.get("Parameters") or []:
            if "ParameterValue" in parameter:
                parameters[str(parameter["ParameterName"])] = str(parameter["ParameterValue"])
    arn = group.get("ARN")
    return ParameterGroupFacts(
        name=name,
        family=str(group.get("CacheParameterGroupFamily") or ""),
        description=str(group.get("Description") or name),
        parameters=parameters,
        tags=elasticache_tags(str(arn), aws) if arn else {},
    )


def _rules(permissions: Any, direction: str) -> list[Rule]:
    rules: list[Rule] = []
    for permission in permissions:
        base = {
            "direction": direction,
            "protocol": str(permission.get("IpProtocol", "-1")),
            "from_port": permission.get("FromPort"),
            "to_port": permission.get("ToPort"),
        }
        for item in permission.get("IpRanges") or []:
            rules.append(Rule(**base, cidr=item.get("CidrIp"), description=item.get("Description")))
        for item in permission.get("Ipv6Ranges") or []:
            rules.append(Rule(**base, ipv6_cidr=item.get("CidrIpv6"), description=item.get("Description")))
        for item in permission.get("UserIdGroupPairs") or []:
            rules.append(Rule(**base, group_id=item.get("GroupId"), description=item.get("Description")))
        for item in permission.get("PrefixListIds") or []:
            rules.append(
                Rule(**base, prefix_list_id=item.get("PrefixListId"), description=item.get("Description"))
            )
    return rules


def permission_of(rule: Rule) -> dict[str, Any]:
    """The EC2 ``IpPermissions`` item of one rule (to revoke or recreate it)."""
    permission: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.from_port is not None:
        permission["FromPort"] = rule.from_port
    if rule.to_port is not None:
        permission["ToPort"] = rule.to_port
    extra = {"Description": rule.description} if rule.description else {}
    if rule.cidr:
        permission["IpRanges"] = [{"CidrIp": rule.cidr, **extra}]
    elif rule.ipv6_cidr:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule.ipv6_cidr, **extra}]
    elif rule.group_id:
        permission["UserIdGroupPairs"] = [{"GroupId": rule.group_id, **extra}]
    elif rule.prefix_list_id:
        permission["PrefixListIds"] = [{"PrefixListId": rule.prefix_list_id, **extra}]
    return permission


def security_group_facts(group_ids: list[str], aws: AwsClients) -> list[SecurityGroupFacts]:
    """Each group with its own rules and the rules of the other groups of its VPC that name it."""
    if not group_ids:
        return []
    try:
        described = aws.ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    except Exception as error:
        if error_code(error) not in SECURITY_GROUP_GONE:
            raise
        described = []
        for group_id in group_ids:  # one is gone: read the others one by one
            try:
                described += aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
            except Exception as inner:
                if error_code(inner) not in SECURITY_GROUP_GONE:
                    raise
    facts = []
    for group in described:
        group_id = str(group["GroupId"])
        vpc_id = str(group.get("VpcId") or "")
        neighbours = aws.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "SecurityGroups"
        ]
        referencing = [
            ReferencingRule(
                group_id=str(other["GroupId"]), group_name=str(other.get("GroupName", "")), rule=rule
            )
            for other in neighbours
            if other["GroupId"] != group_id
            for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress"))
            for rule in _rules(other.get(key) or [], direction)
            if rule.group_id == group_id
        ]
        facts.append(
            SecurityGroupFacts(
                group_id=group_id,
                name=str(group.get("GroupName", "")),
                description=str(group.get("Description") or group.get("GroupName", "")),
                vpc_id=vpc_id,
                rules=_rules(group.get("IpPermissions") or [], "ingress")
                + _rules(group.get("IpPermissionsEgress") or [], "egress"),
                referencing_rules=referencing,
                tags={str(t["Key"]): str(t.get("Value", "")) for t in group.get("Tags") or []},
            )
        )
    return facts


def other_users_of(group_id: str, aws: AwsClients) -> list[str]:
    """Network interfaces other than ElastiCache's own that use the group (they must keep it)."""
    interfaces = aws.ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "NetworkInterfaces"
    ]
    return [
        f"{interface['NetworkInterfaceId']} ({_interface_label(interface)})"
        for interface in interfaces
        if interface.get("RequesterId") != ELASTICACHE_REQUESTER
        and not str(interface.get("Description", "")).startswith("ElastiCache ")
    ]


def _interface_label(interface: Any) -> str:
    return str(interface.get("Description") or interface.get("InterfaceType") or "")


def secret_facts(secret_id: str, aws: AwsClients) -> dict[str, Any] | None:
    """DescribeSecret, or None when the secret does not exist."""
    try:
        return dict(aws.secretsmanager.describe_secret(SecretId=secret_id))
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def _token_field(secret_string: str) -> str | None:
    """The JSON field a secret keeps its token in (None: the whole value is the token)."""
    try:
        document = json.loads(secret_string)
    except json.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    for key in ("token", "authToken", "auth_token", "password"):
        if isinstance(document.get(key), str):
            return key
    strings = [key for key, value in document.items() if isinstance(value, str)]
    return strings[0] if len(strings) == 1 else None


def token_in(secret_string: str) -> str:
    """The token a secret's value holds (its token field, or the whole value)."""
    field = _token_field(secret_string)
    if field is None:
        return secret_string
    return str(json.loads(secret_string)[field])


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
