"""Build a described account in the local engine's moto, through the AWS APIs an operator would use.

:func:`build_account` creates, in order: the VPC and its subnets, the internet and NAT gateways
the routes need, the route tables, the security groups and their rules, the VPC endpoints, the KMS
keys standing for the described ones, the secrets, the instance, the ElastiCache source, the SQS
queues, and the functions with their published versions and aliases, reserved and provisioned
concurrency, asynchronous-invocation settings and SQS event source mappings. It answers a
:class:`LocalAccount`: the local ids of everything, and the facts the rehearsal's tests and reports
rely on.

Everything goes through the engine's boto3 clients (``engine.client("lambda")`` ...), so what moto
does not model (an environment a caller cannot decrypt, an alias serving a frozen version) is the
local engine's business, not this module's.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import string
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from redis_migration.models import REDIS_HOST

from redis_migration_ops.account.description import (
    ENVIRONMENT,
    PROJECT,
    AccountDescription,
    ElastiCacheSource,
    Function,
    Rule,
)
from redis_migration_ops.local_engine.elasticache.reserved_nodes import ReservedNodes
from redis_migration_ops.local_engine.engine import LocalEngine
from redis_migration_ops.local_engine.ssm.instance_information import Platform

# A function whose variables describe-account could not decrypt is rebuilt with this one variable,
# encrypted with its (local) KMS key: what matters is that its environment is KMS-encrypted.
UNREADABLE_PLACEHOLDER_KEY = "ENVIRONMENT_NOT_READ"


# (region, OS name) -> the image _image chose; see there.
_IMAGE_CHOICES: dict[tuple[str, str | None], str] = {}


@dataclass
class LocalAccount:
    """What the rehearsal created in moto before deploying the stack.

    The first fields are the ones the rehearsal has always had; the rest come from the
    description (``description`` itself included) and map its names to the local ids.
    """

    vpc_id: str
    subnet_ids: list[str]
    instance_id: str
    private_ip: str
    redis_group_id: str
    client_group_id: str
    probe_group_id: str
    client_functions: list[str]
    other_functions: list[str]
    old_auth_secret_arn: str | None
    description: AccountDescription | None = None
    region: str = "us-east-1"
    project_name: str = PROJECT
    environment: str = ENVIRONMENT
    elasticache_endpoint: str = ""
    # Variables the cutover removes: those that name the ElastiCache AUTH token's secret.
    remove_keys: list[str] = field(default_factory=list)
    probe_subnet_ids: list[str] = field(default_factory=list)
    probe_group_ids: list[str] = field(default_factory=list)
    # Description name -> local id (or ARN).
    subnets: dict[str, str] = field(default_factory=dict)
    route_tables: dict[str, str] = field(default_factory=dict)
    security_groups: dict[str, str] = field(default_factory=dict)
    nat_gateways: dict[str, str] = field(default_factory=dict)  # by the subnet the NAT lives in
    internet_gateway_id: str | None = None
    vpc_endpoints: dict[str, str] = field(default_factory=dict)  # by full service name
    secrets: dict[str, str] = field(default_factory=dict)
    kms_keys: dict[str, str] = field(default_factory=dict)  # described key ARN -> local key ARN
    # Described ARN -> local ARN, applied to every environment value equal to a described ARN.
    arn_rewrites: dict[str, str] = field(default_factory=dict)
    replication_group_id: str | None = None
    # The AUTH token the local replication group was created with: the one in the token's secret,
    # so a local stand-in for ElastiCache can demand exactly what the clients' secret holds.
    # Rehearsal-only (invented, or from the description): never put it in a report.
    elasticache_auth_token: str | None = field(default=None, repr=False)
    # Function -> described version number -> local version number (published in order).
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    # Function -> alias -> the local version it serves ("$LATEST" possible).
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    # Functions whose variables are encrypted with a (local stand-in for a) customer KMS key.
    kms_encrypted_functions: list[str] = field(default_factory=list)
    # Functions describe-account could not decrypt (rebuilt KMS-encrypted with a placeholder).
    unreadable_functions: list[str] = field(default_factory=list)
    # What the description holds that the local account does not reproduce, said plainly.
    not_reproduced: list[str] = field(default_factory=list)
    # The RedisSecurityGroupId stack parameter ("" unless the description names the group).
    redis_group_parameter: str = ""
    # Queue name -> local queue URL; function -> the UUIDs of its (SQS) event source mappings.
    queues: dict[str, str] = field(default_factory=dict)
    event_source_mappings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def all_functions(self) -> list[str]:
        """Every function of the account (clients first), as the rehearsal's snapshots list them."""
        return self.client_functions + self.other_functions


def build_account(engine: LocalEngine, description: AccountDescription) -> LocalAccount:
    """Create the described account in the engine's moto; answer the local ids and facts."""
    if engine.region != description.region:
        raise ValueError(
            f"region: the description is for {description.region}, the engine runs in {engine.region}"
        )
    try:
        return _Builder(engine, description).build()
    except ClientError as error:
        # What the model cannot check (an address already taken, a limit): one line, the call named.
        details = error.response.get("Error", {})
        operation = error.operation_name
        raise AccountBuildError(
            f"the account cannot be built: {operation}: {details.get('Code')}: {details.get('Message')}"
        ) from None


class AccountBuildError(ValueError):
    """AWS (moto) refused part of a described account."""


class _Builder:
    def __init__(self, engine: LocalEngine, description: AccountDescription) -> None:
        self.engine = engine
        self.d = description
        self.ec2 = engine.client("ec2")
        self._queue_arns: dict[str, str] = {}
        self.account = LocalAccount(
            vpc_id="",
            subnet_ids=[],
            instance_id="",
            private_ip="",
            redis_group_id="",
            client_group_id="",
            probe_group_id="",
            client_functions=[],
            other_functions=[],
            old_auth_secret_arn=None,
            description=description,
            region=description.region,
            project_name=description.stack.project_name,
            environment=description.stack.environment,
            elasticache_endpoint=description.elasticache.endpoint,
        )

    def build(self) -> LocalAccount:
        self._network()
        self._security_groups()
        self._endpoints()
        self._kms_keys()
        self._secrets()
        self._instance()
        self._elasticache()
        self._queues()
        self._functions()
        self._facts()
        return self.account

    # -- the network ---------------------------------------------------------------------------

    def _tags(self, resource: str, name: str | None, tags: dict[str, str]) -> list[dict[str, Any]]:
        # A described name that is only the real resource's id (it had no Name tag) is not a Name.
        named = bool(name) and not _looks_like_an_id(str(name))
        merged = ({"Name": name} if named else {}) | tags
        if not merged:
            return []
        return [{"ResourceType": resource, "Tags": [{"Key": k, "Value": v} for k, v in merged.items()]}]

    def _network(self) -> None:
        vpc = self.d.vpc
        arguments: dict[str, Any] = {"CidrBlock": str(vpc.cidr)}
        if specs := self._tags("vpc", vpc.name, vpc.tags):
            arguments["TagSpecifications"] = specs
        vpc_id = self.ec2.create_vpc(**arguments)["Vpc"]["VpcId"]
        self.account.vpc_id = vpc_id
        for block in vpc.secondary_cidrs:
            self.ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=str(block))
        for subnet in vpc.subnets:
            arguments = {"VpcId": vpc_id, "CidrBlock": str(subnet.cidr)}
            if subnet.availability_zone:
                arguments["AvailabilityZone"] = subnet.availability_zone
            arguments["TagSpecifications"] = self._tags("subnet", subnet.name, subnet.tags)
            created = self.ec2.create_subnet(**arguments)["Subnet"]["SubnetId"]
            self.account.subnets[subnet.name] = created
        self.account.subnet_ids = list(self.account.subnets.values())

        routes = [route for table in vpc.route_tables for route in table.routes]
        if any(route.target == "internet-gateway" for route in routes):
            gateway = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            self.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
            self.account.internet_gateway_id = gateway
        for route in routes:
            where = route.nat_gateway_subnet
            if where is not None and where not in self.account.nat_gateways:
                allocation = self.ec2.allocate_address(Domain="vpc")["AllocationId"]
                nat = self.ec2.create_nat_gateway(
                    SubnetId=self.account.subnets[where], AllocationId=allocation
                )
                self.account.nat_gateways[where] = nat["NatGateway"]["NatGatewayId"]

        main_table = self.ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        for table in vpc.route_tables:
            if table.main:
                table_id = main_table
                if specs := self._tags("route-table", table.name, {}):
                    self.ec2.create_tags(Resources=[table_id], Tags=specs[0]["Tags"])
            else:
                table_id = self.ec2.create_route_table(
                    VpcId=vpc_id, TagSpecifications=self._tags("route-table", table.name, {})
                )["RouteTable"]["RouteTableId"]
            self.account.route_tables[table.name] = table_id
            for subnet_name in table.subnets:
                self.ec2.associate_route_table(
                    RouteTableId=table_id, SubnetId=self.account.subnets[subnet_name]
                )
            for route in table.routes:
                target: dict[str, str]
                if route.target == "nat-gateway":
                    target = {"NatGatewayId": self.account.nat_gateways[str(route.nat_gateway_subnet)]}
                elif route.target == "internet-gateway":
                    target = {"GatewayId": str(self.account.internet_gateway_id)}
                else:
                    via = route.target_id or "another target"
                    self.account.not_reproduced.append(
                        f"route table {table.name}: route to {route.destination} via {via}"
                    )
                    continue
                self.ec2.create_route(
                    RouteTableId=table_id, DestinationCidrBlock=str(route.destination), **target
                )

    def _security_groups(self) -> None:
        vpc_id = self.account.vpc_id
        for group in self.d.security_groups:
            if group.name == "default":
                # Every VPC has one already; its rules are replaced by the described ones below.
                found = self.ec2.describe_security_groups(
                    Filters=[
                        {"Name": "vpc-id", "Values": [vpc_id]},
                        {"Name": "group-name", "Values": ["default"]},
                    ]
                )["SecurityGroups"][0]
                self.account.security_groups[group.name] = found["GroupId"]
                if found.get("IpPermissions"):
                    self.ec2.revoke_security_group_ingress(
                        GroupId=found["GroupId"], IpPermissions=found["IpPermissions"]
                    )
                continue
            arguments: dict[str, Any] = {
                "GroupName": group.name,
                "Description": group.description or group.name,
                "VpcId": vpc_id,
            }
            if specs := self._tags("security-group", None, group.tags):
                arguments["TagSpecifications"] = specs
            self.account.security_groups[group.name] = self.ec2.create_security_group(**arguments)["GroupId"]
        # Rules after every group exists: groups refer to each other.
        for group in self.d.security_groups:
            group_id = self.account.security_groups[group.name]
            if group.ingress:
                self.ec2.authorize_security_group_ingress(
                    GroupId=group_id, IpPermissions=[self._permission(rule) for rule in group.ingress]
                )
            if group.egress is not None:
                current = self.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
                if current.get("IpPermissionsEgress"):
                    self.ec2.revoke_security_group_egress(
                        GroupId=group_id, IpPermissions=current["IpPermissionsEgress"]
                    )
                if group.egress:
                    self.ec2.authorize_security_group_egress(
                        GroupId=group_id, IpPermissions=[self._permission(rule) for rule in group.egress]
                    )

    def _permission(self, rule: Rule) -> dict[str, Any]:
        permission: dict[str, Any] = {"IpProtocol": "-1" if rule.protocol == "all" else rule.protocol}
        if rule.protocol != "all":
            permission["FromPort"] = -1 if rule.from_port is None else rule.from_port
            permission["ToPort"] = -1 if rule.to_port is None else rule.to_port
        extra = {"Description": rule.description} if rule.description else {}
        if rule.cidr is not None:
            permission["IpRanges"] = [{"CidrIp": str(rule.cidr), **extra}]
        else:
            permission["UserIdGroupPairs"] = [
                {"GroupId": self.account.security_groups[str(rule.group)], **extra}
            ]
        return permission

    def _endpoints(self) -> None:
        for endpoint in self.d.vpc.endpoints:
            service = endpoint.service_name(self.d.region)
            arguments: dict[str, Any] = {
                "VpcId": self.account.vpc_id,
                "ServiceName": service,
                "VpcEndpointType": endpoint.type,
            }
            if endpoint.type == "Interface":
                arguments["SubnetIds"] = [self.account.subnets[name] for name in endpoint.subnets]
                arguments["SecurityGroupIds"] = [
                    self.account.security_groups[name] for name in endpoint.security_groups
                ]
                arguments["PrivateDnsEnabled"] = endpoint.private_dns_enabled
            else:
                arguments["RouteTableIds"] = [
                    self.account.route_tables[name] for name in endpoint.route_tables
                ]
            created = self.ec2.create_vpc_endpoint(**arguments)["VpcEndpoint"]["VpcEndpointId"]
            self.account.vpc_endpoints[service] = created

    # -- keys, secrets, the instance, ElastiCache ----------------------------------------------

    def _kms_keys(self) -> None:
        described = {f.kms_key_arn for f in self.d.functions} | {s.kms_key_arn for s in self.d.secrets}
        kms = self.engine.client("kms")
        for arn in sorted(key for key in described if key):
            local = kms.create_key(Description=f"stands for {arn}")["KeyMetadata"]["Arn"]
            self.account.kms_keys[arn] = local
            self.account.arn_rewrites[arn] = local

    def _secrets(self) -> None:
        client = self.engine.client("secretsmanager")
        token_secret = self.d.elasticache.auth_token_secret
        for secret in self.d.secrets:
            value = secret.value
            if value is None:
                # describe-account never reads a value: make one up (a token in the sample's shape
                # for the ElastiCache AUTH token's secret).
                value = (
                    json.dumps({"token": _random_token()}) if secret.name == token_secret else _random_token()
                )
            if secret.name == token_secret:
                self.account.elasticache_auth_token = auth_token_in(value)
            arguments: dict[str, Any] = {"Name": secret.name, "SecretString": value}
            if secret.description:
                arguments["Description"] = secret.description
            if secret.kms_key_arn:
                arguments["KmsKeyId"] = self.account.kms_keys[secret.kms_key_arn]
            if secret.tags:
                arguments["Tags"] = [{"Key": k, "Value": v} for k, v in secret.tags.items()]
            arn = client.create_secret(**arguments)["ARN"]
            self.account.secrets[secret.name] = arn
            if secret.arn:
                self.account.arn_rewrites[secret.arn] = arn

    def _instance(self) -> None:
        instance = self.d.instance
        arguments: dict[str, Any] = {
            "ImageId": self._image(instance.os_name),
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": instance.instance_type,
            "SubnetId": self.account.subnets[instance.subnet or self.d.vpc.subnets[0].name],
            "SecurityGroupIds": [self.account.security_groups[name] for name in instance.security_groups],
        }
        if instance.private_ip is not None:
            arguments["PrivateIpAddress"] = str(instance.private_ip)
        if specs := self._tags("instance", None, instance.tags):
            arguments["TagSpecifications"] = specs
        created = self.ec2.run_instances(**arguments)["Instances"][0]
        self.account.instance_id = created["InstanceId"]
        if self.d.reserved_cache_nodes:
            self.engine.record_reserved_cache_nodes(
                [
                    ReservedNodes(
                        reservation_id=r.id,
                        node_type=r.node_type,
                        count=r.count,
                        start=r.start,
                        years=r.years,
                        offering_type=r.offering_type,
                        product_description=r.product_description,
                    )
                    for r in self.d.reserved_cache_nodes
                ]
            )
        if instance.platform is not None:
            # SSM reports the described OS, whatever the sandbox host runs (ssm/instance_information.py).
            described = instance.platform
            self.engine.record_instance_platform(
                created["InstanceId"],
                Platform(name=described.name, version=described.version, type=described.type),
            )
        self.account.private_ip = created["PrivateIpAddress"]
        chosen = self.d.stack.redis_security_group
        self.account.redis_group_id = self.account.security_groups[chosen or instance.security_groups[0]]
        self.account.redis_group_parameter = self.account.security_groups[chosen] if chosen else ""

    def _image(self, os_name: str | None) -> str:
        """An image whose description names the described OS, else an Amazon Linux 2023 one (the
        record is all that matters: the sandbox host runs this machine's OS). Filtered: listing every
        image moto knows takes seconds. moto's images are the same in every account it fakes, so
        the choice is kept per region and OS for the process (a lookup costs 0.2 s per set-up)."""
        key = (str(self.ec2.meta.region_name), os_name)
        if key not in _IMAGE_CHOICES:
            _IMAGE_CHOICES[key] = self._find_image(os_name)
        return _IMAGE_CHOICES[key]

    def _find_image(self, os_name: str | None) -> str:
        filters = [{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}]
        if os_name:
            filters.insert(0, {"Name": "description", "Values": [f"*{os_name}*"]})
        for chosen in filters:
            images = self.ec2.describe_images(Owners=["amazon"], Filters=[chosen])["Images"]
            if images:
                return str(sorted(images, key=lambda image: str(image.get("Name")))[0]["ImageId"])
        return str(self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])

    def _elasticache(self) -> None:
        cache: ElastiCacheSource = self.d.elasticache
        if cache.auth_token_secret:
            self.account.old_auth_secret_arn = self.account.secrets[cache.auth_token_secret]
        if cache.replication_group_id is None:
            return
        client = self.engine.client("elasticache")
        arguments: dict[str, Any] = {
            "ReplicationGroupId": cache.replication_group_id,
            "ReplicationGroupDescription": cache.description or cache.replication_group_id,
            "Engine": cache.engine,
            "Port": cache.port,
            "TransitEncryptionEnabled": cache.transit_encryption,
            "AtRestEncryptionEnabled": cache.at_rest_encryption,
        }
        if cache.engine_version:
            arguments["EngineVersion"] = cache.engine_version
        if cache.node_type:
            arguments["CacheNodeType"] = cache.node_type
        if cache.cluster_mode == "disabled":
            arguments["NumCacheClusters"] = cache.node_count
        else:
            arguments["ClusterMode"] = cache.cluster_mode
            arguments["NumNodeGroups"] = cache.shard_count
            arguments["ReplicasPerNodeGroup"] = cache.node_count // cache.shard_count - 1
        if cache.subnet_group is not None:
            client.create_cache_subnet_group(
                CacheSubnetGroupName=cache.subnet_group.name,
                CacheSubnetGroupDescription=cache.subnet_group.description or cache.subnet_group.name,
                SubnetIds=[self.account.subnets[name] for name in cache.subnet_group.subnets],
            )
            arguments["CacheSubnetGroupName"] = cache.subnet_group.name
        if cache.parameter_group is not None:
            if not cache.parameter_group.is_default:
                self._parameter_group(client, cache)
            arguments["CacheParameterGroupName"] = cache.parameter_group.name
        if cache.security_groups:
            arguments["SecurityGroupIds"] = [
                self.account.security_groups[name] for name in cache.security_groups
            ]
        if cache.auth_token_enabled:
            # The token the clients' secret holds; without such a secret, any valid token.
            if self.account.elasticache_auth_token is None:
                self.account.elasticache_auth_token = _random_token()
            arguments["AuthToken"] = self.account.elasticache_auth_token
        if cache.tags:
            arguments["Tags"] = [{"Key": k, "Value": v} for k, v in cache.tags.items()]
        if cache.transit_encryption_mode is not None:
            arguments["TransitEncryptionMode"] = cache.transit_encryption_mode
        if cache.user_groups:
            arguments["UserGroupIds"] = list(cache.user_groups)
        if cache.data_tiering:
            arguments["DataTieringEnabled"] = True
        member = cache.global_datastore
        if member is not None and member.role == "secondary":
            arguments["GlobalReplicationGroupId"] = member.id
        client.create_replication_group(**arguments)
        if member is not None and member.role == "primary":
            # ElastiCache names a Global Datastore <its prefix>-<the suffix given>.
            suffix = member.id.split("-", 1)[1] if "-" in member.id else member.id
            made = client.create_global_replication_group(
                GlobalReplicationGroupIdSuffix=suffix, PrimaryReplicationGroupId=cache.replication_group_id
            )["GlobalReplicationGroup"]["GlobalReplicationGroupId"]
            if made != member.id:
                self.account.not_reproduced.append(
                    f"Global Datastore {member.id}: the local one is {made} (ElastiCache picks the prefix)"
                )
        # The endpoints the described account's clients use are the group's (moto invents others):
        # its primary, reader and nodes, so a function naming any of them names this group.
        reader, nodes = cache.group_endpoints()
        self.engine.name_elasticache_endpoint(cache.replication_group_id, cache.endpoint, reader, nodes)
        self.account.replication_group_id = cache.replication_group_id

    def _parameter_group(self, client: Any, cache: ElastiCacheSource) -> None:
        group = cache.parameter_group
        assert group is not None  # checked by the caller
        family = group.family or f"{cache.engine}{(cache.engine_version or '7').split('.')[0]}"
        try:
            client.create_cache_parameter_group(
                CacheParameterGroupName=group.name, CacheParameterGroupFamily=family, Description=group.name
            )
            if group.parameters:
                client.modify_cache_parameter_group(
                    CacheParameterGroupName=group.name,
                    ParameterNameValues=[
                        {"ParameterName": k, "ParameterValue": v} for k, v in group.parameters.items()
                    ],
                )
        except ClientError as error:
            # moto 5.2.5 has no cache parameter groups: say so instead of failing the whole rehearsal.
            self.account.not_reproduced.append(
                f"ElastiCache parameter group {group.name}: {error.response['Error'].get('Message') or error}"
            )

    # -- the functions -------------------------------------------------------------------------

    def _role(self, name: str, made: dict[str, str]) -> str:
        if name not in made:
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            made[name] = self.engine.client("iam").create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(policy)
            )["Role"]["Arn"]
        return made[name]

    def _environment(self, variables: dict[str, str]) -> dict[str, str]:
        rewrites = self.account.arn_rewrites
        return {key: rewrites.get(value, value) for key, value in variables.items()}

    def _queues(self) -> None:
        """Dead-letter queues first: a queue's redrive policy names its DLQ's ARN."""
        sqs = self.engine.client("sqs")
        arns: dict[str, str] = {}
        pending = list(self.d.queues)
        while pending:
            ready = [q for q in pending if q.dead_letter_queue is None or q.dead_letter_queue in arns]
            if not ready:  # a redrive cycle: AWS would accept it; build the rest without redrive
                ready = pending[:1]
            for queue in ready:
                attributes = {
                    "VisibilityTimeout": str(queue.visibility_timeout),
                    "MessageRetentionPeriod": str(queue.message_retention_period),
                }
                if queue.name.endswith(".fifo"):
                    attributes["FifoQueue"] = "true"
                if queue.dead_letter_queue in arns:
                    attributes["RedrivePolicy"] = json.dumps(
                        {
                            "deadLetterTargetArn": arns[str(queue.dead_letter_queue)],
                            "maxReceiveCount": queue.max_receive_count,
                        }
                    )
                url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
                self.account.queues[queue.name] = url
                arns[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                if queue.arn:
                    self.account.arn_rewrites[queue.arn] = arns[queue.name]
                pending.remove(queue)
        self._queue_arns = arns

    def _functions(self) -> None:
        roles: dict[str, str] = {}
        lambda_ = self.engine.client("lambda")
        for function in self.d.functions:
            self._function(lambda_, function, self._role(function.role, roles))

    def _function(self, lambda_: Any, function: Function, role_arn: str) -> None:
        name = function.name
        environment = self._environment(function.environment)
        if function.environment_error is not None:
            environment = {UNREADABLE_PLACEHOLDER_KEY: function.environment_error.error_code}
            self.account.unreadable_functions.append(name)
        if function.package_type == "Image":
            self.account.not_reproduced.append(f"function {name}: a container image, rebuilt as a zip")
        arguments: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": function.runtime,
            "Role": role_arn,
            "Handler": function.handler,
            "Code": {"ZipFile": _code_for(function)},
            "Description": function.description,
            "Timeout": function.timeout,
            "MemorySize": function.memory_size,
            "Environment": {"Variables": environment},
        }
        if function.kms_key_arn:
            arguments["KMSKeyArn"] = self.account.kms_keys[function.kms_key_arn]
            self.account.kms_encrypted_functions.append(name)
        if function.vpc is not None:
            arguments["VpcConfig"] = {
                "SubnetIds": [self.account.subnets[s] for s in function.vpc.subnets],
                "SecurityGroupIds": [self.account.security_groups[g] for g in function.vpc.security_groups],
            }
        if function.tags:
            arguments["Tags"] = dict(function.tags)
        lambda_.create_function(**arguments)

        numbers: dict[str, str] = {}
        if function.versions:
            waiter = lambda_.get_waiter("function_updated_v2")
            for version in sorted(function.versions, key=lambda v: int(v.version)):
                frozen = self._environment(version.environment)
                if version.environment_error is not None:
                    frozen = {UNREADABLE_PLACEHOLDER_KEY: version.environment_error.error_code}
                # A version freezes $LATEST's configuration: set it, wait, publish.
                lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": frozen})
                waiter.wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
                published = lambda_.publish_version(FunctionName=name, Description=version.description)
                numbers[version.version] = published["Version"]
            lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": environment})
            waiter.wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            self.account.versions[name] = dict(numbers)
        numbers["$LATEST"] = "$LATEST"  # an alias may serve $LATEST

        for alias in function.aliases:
            arguments = {
                "FunctionName": name,
                "Name": alias.name,
                "FunctionVersion": numbers[alias.version],
                "Description": alias.description,
            }
            if alias.additional_version_weights:
                arguments["RoutingConfig"] = {
                    "AdditionalVersionWeights": {
                        numbers[v]: weight for v, weight in alias.additional_version_weights.items()
                    }
                }
            lambda_.create_alias(**arguments)
            self.account.aliases.setdefault(name, {})[alias.name] = numbers[alias.version]
        if function.reserved_concurrency is not None:
            lambda_.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=function.reserved_concurrency
            )
        for provisioned in function.provisioned_concurrency:
            lambda_.put_provisioned_concurrency_config(
                FunctionName=name,
                Qualifier=self._qualifier(name, provisioned.qualifier),
                ProvisionedConcurrentExecutions=provisioned.concurrency,
            )
        for setting in function.async_invoke:
            if setting.qualifier is not None:
                # moto keeps one setting per function, whatever the qualifier.
                self.account.not_reproduced.append(
                    f"function {name}: the asynchronous-invocation settings of {setting.qualifier} "
                    "(only the function's own are built)"
                )
                continue
            arguments = {"FunctionName": name}
            if setting.maximum_event_age_in_seconds is not None:
                arguments["MaximumEventAgeInSeconds"] = setting.maximum_event_age_in_seconds
            if setting.maximum_retry_attempts is not None:
                arguments["MaximumRetryAttempts"] = setting.maximum_retry_attempts
            if setting.on_failure:
                arguments["DestinationConfig"] = {"OnFailure": {"Destination": setting.on_failure}}
            lambda_.put_function_event_invoke_config(**arguments)
        for mapping in function.event_source_mappings:
            if mapping.queue is None:
                self.account.not_reproduced.append(
                    f"function {name}: the event source mapping from {mapping.event_source_arn} "
                    "(only SQS queues are built)"
                )
                continue
            target = name
            if mapping.qualifier is not None:
                target = f"{name}:{self._qualifier(name, mapping.qualifier)}"
            created = lambda_.create_event_source_mapping(
                EventSourceArn=self._queue_arns[mapping.queue],
                FunctionName=target,
                BatchSize=mapping.batch_size,
                Enabled=mapping.enabled,
            )
            self.account.event_source_mappings.setdefault(name, []).append(created["UUID"])

    def _qualifier(self, function: str, qualifier: str) -> str:
        """The local name of a described version (numbers are published in order) or alias."""
        return self.account.versions.get(function, {}).get(qualifier, qualifier)

    # -- facts ---------------------------------------------------------------------------------

    def _facts(self) -> None:
        d, account = self.d, self.account
        clients = set(d.redis_clients())
        account.client_functions = [f.name for f in d.functions if f.name in clients]
        account.other_functions = [f.name for f in d.functions if f.name not in clients]
        client_groups = [
            group
            for f in d.functions
            if f.name in clients and f.vpc is not None
            for group in f.vpc.security_groups
        ]
        account.client_group_id = account.security_groups[client_groups[0]] if client_groups else ""

        stack = d.stack
        probe_subnets = stack.probe_subnets or _unique(
            subnet for f in d.functions if f.name in clients and f.vpc is not None for subnet in f.vpc.subnets
        )
        account.probe_subnet_ids = [account.subnets[s] for s in probe_subnets] or list(account.subnet_ids)
        if stack.probe_security_groups:
            account.probe_group_ids = [account.security_groups[g] for g in stack.probe_security_groups]
        else:
            name = f"{stack.project_name}-migration-probe"
            if name not in account.security_groups:  # an account described after a rehearsal has it
                account.security_groups[name] = self.ec2.create_security_group(
                    GroupName=name, Description="the migration's in-VPC probe", VpcId=account.vpc_id
                )["GroupId"]
            account.probe_group_ids = [account.security_groups[name]]
        account.probe_group_id = account.probe_group_ids[0]

        # The keys naming the AUTH token's secret, by its described or its local ARN.
        auth_arns: set[str] = set()
        if d.elasticache.auth_token_secret:
            secret = d.secret(d.elasticache.auth_token_secret)
            auth_arns |= {account.secrets[secret.name], *([secret.arn] if secret.arn else [])}
        account.remove_keys = _unique(
            key
            for f in d.functions
            if f.name in clients
            for key, value in f.environment.items()
            if value in auth_arns and key != REDIS_HOST
        )


def alias_environments(engine: LocalEngine, account: LocalAccount) -> dict[str, dict[str, dict[str, str]]]:
    """Function -> alias -> the environment of the version the alias serves (its main version)."""
    lambda_ = engine.client("lambda")
    answer: dict[str, dict[str, dict[str, str]]] = {}
    for function, aliases in account.aliases.items():
        for alias in aliases:
            served = lambda_.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]
            configuration = lambda_.get_function_configuration(FunctionName=function, Qualifier=served)
            answer.setdefault(function, {})[alias] = dict(
                configuration.get("Environment", {}).get("Variables", {})
            )
    return answer


def _looks_like_an_id(name: str) -> bool:
    return bool(re.fullmatch(r"(subnet|rtb|vpc|sg|igw|nat)-[0-9a-f]{8,17}", name))


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def auth_token_in(value: str) -> str:
    """The token a secret's value holds: its ``token`` / ``authToken`` / ``password`` field when the
    value is a JSON object, its only string field, or else the whole value."""
    try:
        document = json.loads(value)
    except json.JSONDecodeError:
        return value
    if not isinstance(document, dict):
        return value
    for key in ("token", "authToken", "auth_token", "password"):
        if isinstance(document.get(key), str):
            return str(document[key])
    strings = [v for v in document.values() if isinstance(v, str)]
    return strings[0] if len(strings) == 1 else value


def _random_token(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _code_for(function: Function) -> bytes:
    """A tiny deployment package whose handler exists (the rehearsal never invokes these functions)."""
    module, _, entry = function.handler.rpartition(".")
    module = module or "app"
    if function.runtime.startswith("python"):
        path, source = (
            f"{module.replace('.', '/')}.py",
            f"def {entry or 'handler'}(event, context):\n    return {{}}\n",
        )
    elif function.runtime.startswith("nodejs"):
        path, source = f"{module}.js", f"exports.{entry or 'handler'} = async () => ({{}});\n"
    else:
        path, source = "README", f"stands for {function.name} ({function.runtime})\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(path, source)
    return buffer.getvalue()
