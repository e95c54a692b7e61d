"""The account description: what a rehearsal builds locally, and what `describe-account` writes.

One YAML or JSON document describes the parts of an AWS account a migration touches or depends
on: the region, the VPC (subnets, route tables, interface endpoints), the security groups, the
instance that will run Redis, the ElastiCache source, the secrets the functions name, the SQS
queues that feed them, and the Lambda functions (environment, VPC attachment, KMS key, reserved
concurrency, tags, published versions and aliases, event source mappings, provisioned
concurrency, asynchronous-invocation settings: what a write freeze meets).
`redis-migration rehearse --account FILE` builds it in the local engine
(:func:`redis_migration_ops.rehearsal.local_account.build_account`); `redis-migration describe-account`
reads a real account into it with read-only calls
(:mod:`redis_migration_ops.account.describe`).

References between parts are by the *name* given in the description (a subnet's, a route
table's, a security group's, a secret's); ``id`` and ``arn`` fields only record what the real
account called them. An environment value equal to a described secret's ``arn`` (or a KMS key
ARN) is rewritten to the local resource's ARN when the account is built, so a function keeps
pointing at "its" secret.

Keys are camelCase, unknown keys are refused, and every bad field is named with its path
(``functions[3].vpc.securityGroups[0]: unknown security group 'x'``).
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from redis_migration.clients.endpoints import CacheNames, uses_cache
from redis_migration.models import REDIS_HOST, Model

# Today's sample account (``rehearse`` without ``--account``): its names are relied on by tests.
PROJECT = "campaign-system"
ENVIRONMENT = "rehearsal"
ELASTICACHE_ENDPOINT = "campaign-redis.abc123.0001.use1.cache.amazonaws.com"
OLD_AUTH_KEY = "REDIS_AUTH_TOKEN_SECRET_ARN"
VPC_CIDR = "10.42.0.0/16"
DEFAULT_ROLE = "campaign-functions"
FORMAT_VERSION: Literal[1] = 1

# What describe-account writes instead of a secret-like variable's value.
REDACTED = "<redacted>"

_FUNCTION_NAME = r"^[A-Za-z0-9_-]{1,64}$"
_ALIAS_NAME = r"^[A-Za-z0-9_-]{1,128}$"
_ENV_KEY = r"^[A-Za-z][A-Za-z0-9_]*$"
_VERSION = r"^[1-9][0-9]*$"
_REGION = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"
_KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$"
_SECRET_ARN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$"  # noqa: S105 - a pattern

# Names are what AWS allows for the thing (a Name tag, a GroupName): anything printable.
Name = Annotated[str, Field(min_length=1, max_length=256)]
Tags = dict[Annotated[str, Field(min_length=1, max_length=128)], Annotated[str, Field(max_length=256)]]
Environment = dict[Annotated[str, Field(pattern=_ENV_KEY)], str]


class AccountDescriptionError(ValueError):
    """An account description that cannot be used; the message names every bad field."""


# ---------------------------------------------------------------------------------------------
# The network.


class Subnet(Model):
    """A subnet of the VPC. ``name`` is how the rest of the description refers to it (its Name tag)."""

    name: Name
    id: str | None = None
    cidr: ipaddress.IPv4Network
    availability_zone: str | None = None
    tags: Tags = {}


RouteTarget = Literal["nat-gateway", "internet-gateway", "other"]


class Route(Model):
    """A route of a route table. ``other`` (a transit gateway, a peering, an appliance) is recorded
    with its ``targetId`` but not reproduced locally: a rehearsal sees no such route."""

    destination: ipaddress.IPv4Network
    target: RouteTarget
    # The subnet the NAT gateway lives in (``target: nat-gateway`` only).
    nat_gateway_subnet: str | None = None
    target_id: str | None = None

    @model_validator(mode="after")
    def _nat_gateway_has_a_subnet(self) -> Self:
        if self.target == "nat-gateway" and not self.nat_gateway_subnet:
            raise ValueError("natGatewaySubnet: required for a nat-gateway route (the NAT's own subnet)")
        if self.target != "nat-gateway" and self.nat_gateway_subnet:
            raise ValueError("natGatewaySubnet: only for target nat-gateway")
        return self


class RouteTable(Model):
    """A route table: the VPC's main one (``main: true``) or one associated with ``subnets``."""

    name: Name
    id: str | None = None
    main: bool = False
    subnets: list[str] = []
    routes: list[Route] = []


class VpcEndpoint(Model):
    """A VPC endpoint. ``service`` is the short name (``secretsmanager``, ``ec2``, ``monitoring``,
    ``ssm``, ``s3``) or the full service name (``com.amazonaws.<region>.<service>``)."""

    service: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")]
    type: Literal["Interface", "Gateway"] = "Interface"
    id: str | None = None
    subnets: list[str] = []
    security_groups: list[str] = []
    route_tables: list[str] = []
    private_dns_enabled: bool = True

    def service_name(self, region: str) -> str:
        """The full service name AWS uses for this endpoint in ``region``."""
        return (
            self.service
            if self.service.startswith("com.amazonaws.")
            else f"com.amazonaws.{region}.{self.service}"
        )


class Vpc(Model):
    """The VPC the instance, the ElastiCache source and the in-VPC functions live in."""

    id: str | None = None
    name: str | None = None
    cidr: ipaddress.IPv4Network
    secondary_cidrs: list[ipaddress.IPv4Network] = []
    subnets: Annotated[list[Subnet], Field(min_length=1)]
    route_tables: list[RouteTable] = []
    endpoints: list[VpcEndpoint] = []
    tags: Tags = {}


class Rule(Model):
    """One security-group rule with one source (ingress) or destination (egress): a CIDR or a group."""

    protocol: Literal["all", "tcp", "udp", "icmp"] = "tcp"
    from_port: Annotated[int | None, Field(ge=-1, le=65535)] = None
    to_port: Annotated[int | None, Field(ge=-1, le=65535)] = None
    cidr: ipaddress.IPv4Network | None = None
    group: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_peer_and_ports(self) -> Self:
        if (self.cidr is None) == (self.group is None):
            raise ValueError("give exactly one of cidr or group")
        if self.protocol in {"tcp", "udp"} and (self.from_port is None or self.to_port is None):
            raise ValueError(f"fromPort and toPort: required for protocol {self.protocol}")
        if self.from_port is not None and self.to_port is not None and self.from_port > self.to_port:
            raise ValueError("fromPort: greater than toPort")
        return self


class SecurityGroup(Model):
    """A security group of the VPC, by its GroupName. ``egress`` absent means AWS's default (all out)."""

    name: Name
    id: str | None = None
    description: str | None = None
    ingress: list[Rule] = []
    egress: list[Rule] | None = None
    tags: Tags = {}


# ---------------------------------------------------------------------------------------------
# The instance, the ElastiCache source, the secrets.


class InstancePlatform(Model):
    """The OS as SSM's agent reports it (``DescribeInstanceInformation``): ``PlatformName`` and
    ``PlatformVersion`` are os-release's ``NAME`` and ``VERSION_ID`` (``Ubuntu``, ``22.04``)."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    version: Annotated[str, Field(max_length=64)]
    type: Literal["Linux", "Windows", "MacOS"] = "Linux"

    @field_validator("version", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        # YAML reads 22.04 as the number 22.04 and 22.10 as 22.1: a version must be quoted.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'a version is text: quote it ("{value}")')  # noqa: TRY004 - pydantic wants ValueError
        return value


class Instance(Model):
    """The EC2 instance that will run the self-hosted Redis (a sandbox host in a rehearsal)."""

    id: str | None = None
    subnet: str | None = None  # default: the first subnet
    private_ip: ipaddress.IPv4Address | None = None  # default: one the subnet assigns
    security_groups: Annotated[list[str], Field(min_length=1)]
    instance_type: str = "t3.small"
    # The image's description, for the record (the local instance gets an image that matches it).
    os_name: str | None = None
    # The OS SSM reports. A rehearsal's SSM answers with it, so the preflight decides as it would on
    # AWS (e.g. refuses Ubuntu 22.04); absent, it answers the sandbox host's own OS (this machine's).
    platform: InstancePlatform | None = None
    tags: Tags = {}


class CacheSubnetGroup(Model):
    name: Name
    subnets: Annotated[list[str], Field(min_length=1)]
    description: str | None = None


class CacheParameterGroup(Model):
    """``default.redis7`` and the like are AWS's; any other name is a custom group with ``parameters``."""

    name: Name
    family: str | None = None
    parameters: dict[str, str] = {}

    @property
    def is_default(self) -> bool:
        return self.name.startswith("default.")


_HOST_NAME = r"^[A-Za-z0-9.-]+$"


class GlobalDatastoreMembership(Model):
    """The Global Datastore the replication group belongs to (DescribeReplicationGroups'
    ``GlobalReplicationGroupInfo``): its name, and this group's role in it."""

    id: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9-]+$")]
    role: Literal["primary", "secondary"]

    @field_validator("role", mode="before")
    @classmethod
    def _role_in_lower_case(cls, role: object) -> object:
        # The API documents primary/secondary; CloudFormation spells them PRIMARY/SECONDARY.
        return role.lower() if isinstance(role, str) else role


class ElastiCacheSource(Model):
    """The Redis the functions use today: the endpoint they name, and what is behind it.

    ``endpoint`` is the group's primary endpoint (the stack's ElastiCacheEndpoint). A client may name
    the group by any of its endpoints: ``readerEndpoint`` and ``nodeEndpoints`` (one per node, in
    member order) are what DescribeReplicationGroups answers; absent, they follow ElastiCache's
    naming from ``endpoint`` (:func:`derived_endpoints`).
    """

    endpoint: Annotated[str, Field(min_length=3, max_length=255, pattern=_HOST_NAME)]
    reader_endpoint: Annotated[str | None, Field(min_length=3, max_length=255, pattern=_HOST_NAME)] = None
    node_endpoints: list[Annotated[str, Field(min_length=3, max_length=255, pattern=_HOST_NAME)]] = []
    port: Annotated[int, Field(ge=1, le=65535)] = 6379
    # Absent: nothing behind the endpoint is built (the functions only name it).
    replication_group_id: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")] = None
    description: str | None = None
    engine: Literal["redis", "valkey"] = "redis"
    engine_version: str | None = None
    node_type: str | None = None
    # Every node (primary and replicas, of every shard): what the bill counts.
    node_count: Annotated[int, Field(ge=1, le=500)] = 1
    cluster_mode: Literal["disabled", "enabled", "compatible"] = "disabled"
    shard_count: Annotated[int, Field(ge=1, le=500)] = 1
    subnet_group: CacheSubnetGroup | None = None
    parameter_group: CacheParameterGroup | None = None
    security_groups: list[str] = []
    auth_token_enabled: bool = False
    # The secret (by name, from ``secrets``) the functions read the AUTH token from.
    auth_token_secret: str | None = None
    transit_encryption: bool = False
    # TransitEncryptionMode: "preferred" accepts TLS and plaintext clients, "required" TLS only.
    transit_encryption_mode: Literal["preferred", "required"] | None = None
    at_rest_encryption: bool = False
    # UserGroupIds: RBAC user groups (the clients log in as ElastiCache users).
    user_groups: list[Annotated[str, Field(min_length=1, max_length=120)]] = []
    # GlobalReplicationGroupInfo: a member of a Global Datastore.
    global_datastore: GlobalDatastoreMembership | None = None
    # DataTiering: data kept on SSD beyond memory (r6gd node types only).
    data_tiering: bool = False
    tags: Tags = {}

    @field_validator("endpoint", "reader_endpoint")
    @classmethod
    def _lower_case_host(cls, endpoint: str | None) -> str | None:
        return endpoint.lower() if endpoint else endpoint

    @field_validator("node_endpoints")
    @classmethod
    def _lower_case_hosts(cls, endpoints: list[str]) -> list[str]:
        return [endpoint.lower() for endpoint in endpoints]

    def group_endpoints(self) -> tuple[str | None, list[str]]:
        """(reader endpoint, node endpoints): as recorded, else derived from ``endpoint``."""
        reader, nodes = derived_endpoints(
            self.endpoint, self.replication_group_id, self.node_count, self.cluster_mode
        )
        return self.reader_endpoint or reader, self.node_endpoints or nodes

    def cache_names(self) -> CacheNames:
        """Every name of the cache a client may use (the one definition: clients/endpoints.py)."""
        reader, nodes = self.group_endpoints()
        return CacheNames.of([self.endpoint, *([reader] if reader else []), *nodes], self.port)

    @model_validator(mode="after")
    def _nodes_fit_the_mode(self) -> Self:
        if self.cluster_mode == "disabled" and self.shard_count != 1:
            raise ValueError("shardCount: a replication group with clusterMode disabled has one shard")
        if self.cluster_mode == "disabled" and self.node_count > 6:
            raise ValueError("nodeCount: at most 6 (a primary and 5 replicas) with clusterMode disabled")
        if self.node_count % self.shard_count:
            raise ValueError("nodeCount: not the same number of nodes in every shard (shardCount)")
        return self

    @model_validator(mode="after")
    def _settings_elasticache_accepts(self) -> Self:
        if self.transit_encryption_mode is not None and not self.transit_encryption:
            raise ValueError("transitEncryptionMode: only with transitEncryption true")
        if self.data_tiering and self.node_type is not None and ".r6gd." not in f".{self.node_type}.":
            # "Data tiering is only supported for replication groups using the r6gd node type."
            raise ValueError(f"dataTiering: needs an r6gd node type, not {self.node_type}")
        return self

    @model_validator(mode="after")
    def _auth_token_needs_tls(self) -> Self:
        if self.auth_token_secret and not self.auth_token_enabled:
            raise ValueError("authTokenSecret: given, but authTokenEnabled is false")
        if self.auth_token_enabled and not self.transit_encryption:
            # ElastiCache refuses an AUTH token without in-transit encryption.
            raise ValueError(
                "transitEncryption: must be true when authTokenEnabled (ElastiCache requires it)"
            )
        return self


class Secret(Model):
    """A Secrets Manager secret the account holds (e.g. the old ElastiCache AUTH token).

    ``value`` is never written by describe-account; absent, the rehearsal generates one.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")]
    arn: Annotated[str | None, Field(pattern=_SECRET_ARN)] = None
    description: str | None = None
    value: str | None = None
    kms_key_arn: Annotated[str | None, Field(pattern=_KMS_KEY_ARN)] = None
    tags: Tags = {}


class Queue(Model):
    """An SQS queue a function's event source mapping polls, or a dead-letter queue of one."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,75}(\.fifo)?$")]
    arn: str | None = None
    visibility_timeout: Annotated[int, Field(ge=0, le=43200)] = 30
    message_retention_period: Annotated[int, Field(ge=60, le=1209600)] = 345600
    # The redrive policy: a described queue's name, and how many receives before a message goes there.
    dead_letter_queue: str | None = None
    max_receive_count: Annotated[int | None, Field(ge=1, le=1000)] = None
    tags: Tags = {}

    @model_validator(mode="after")
    def _redrive_is_whole(self) -> Self:
        if (self.dead_letter_queue is None) != (self.max_receive_count is None):
            raise ValueError("deadLetterQueue and maxReceiveCount: give both (the redrive policy) or neither")
        return self


# ---------------------------------------------------------------------------------------------
# The functions.


class EventSourceMapping(Model):
    """A mapping that invokes the function (or one of its aliases or versions) from an event source.

    ``queue`` names a described SQS queue (built locally); ``eventSourceArn`` any other source
    (Kinesis, DynamoDB, Kafka, MQ), recorded but not built by a rehearsal.
    """

    queue: str | None = None
    event_source_arn: str | None = None
    # The alias or version it invokes (None: the function itself).
    qualifier: Annotated[str | None, Field(pattern=r"^([1-9][0-9]*|[A-Za-z0-9_-]{1,128})$")] = None
    enabled: bool = True
    batch_size: Annotated[int, Field(ge=1, le=10000)] = 10
    uuid: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.queue is None) == (self.event_source_arn is None):
            raise ValueError("give exactly one of queue or eventSourceArn")
        return self


class ProvisionedConcurrency(Model):
    """Provisioned concurrency on an alias or a published version (never ``$LATEST``)."""

    qualifier: Annotated[str, Field(pattern=r"^([1-9][0-9]*|[A-Za-z0-9_-]{1,128})$")]
    concurrency: Annotated[int, Field(ge=1)]


class AsyncInvoke(Model):
    """The asynchronous-invocation settings (PutFunctionEventInvokeConfig) of the function, or of
    one of its aliases or versions."""

    qualifier: Annotated[str | None, Field(pattern=r"^([1-9][0-9]*|[A-Za-z0-9_-]{1,128})$")] = None
    maximum_event_age_in_seconds: Annotated[int | None, Field(ge=60, le=21600)] = None
    maximum_retry_attempts: Annotated[int | None, Field(ge=0, le=2)] = None
    # Where Lambda sends an event it gives up on (an SQS, SNS, Lambda or EventBridge ARN).
    on_failure: str | None = None


class EnvironmentUnreadable(Model):
    """``Environment.Error`` as Lambda returned it: the reader could not decrypt the variables."""

    error_code: str
    message: str = ""


class FunctionVersion(Model):
    """A published version: its environment is frozen at publication."""

    version: Annotated[str, Field(pattern=_VERSION)]
    description: str = ""
    environment: Environment = {}
    environment_error: EnvironmentUnreadable | None = None


class Alias(Model):
    """An alias serves ``version`` (or ``$LATEST``), optionally a share of traffic to another version."""

    name: Annotated[str, Field(pattern=_ALIAS_NAME)]
    version: Annotated[str, Field(pattern=r"^([1-9][0-9]*|\$LATEST)$")]
    additional_version_weights: dict[
        Annotated[str, Field(pattern=_VERSION)], Annotated[float, Field(ge=0.0, le=1.0)]
    ] = {}
    description: str = ""

    @field_validator("name")
    @classmethod
    def _not_a_version_number(cls, name: str) -> str:
        if name.isdigit():
            raise ValueError("an alias name cannot be all digits (that is a version)")
        return name

    @field_validator("additional_version_weights")
    @classmethod
    def _one_extra_version(cls, weights: dict[str, float]) -> dict[str, float]:
        if len(weights) > 1:
            raise ValueError("at most one additional version (Lambda's routing configuration)")
        return weights


class VpcAttachment(Model):
    subnets: Annotated[list[str], Field(min_length=1)]
    security_groups: Annotated[list[str], Field(min_length=1)]


class Function(Model):
    """A Lambda function, whether it uses Redis or not. ``environment`` is ``$LATEST``'s."""

    name: Annotated[str, Field(pattern=_FUNCTION_NAME)]
    runtime: str = "python3.13"
    handler: str = "app.handler"
    package_type: Literal["Zip", "Image"] = "Zip"
    role: Annotated[str, Field(pattern=r"^[A-Za-z0-9+=,.@_/-]{1,64}$")] = DEFAULT_ROLE
    description: str = ""
    timeout: Annotated[int, Field(ge=1, le=900)] = 3
    memory_size: Annotated[int, Field(ge=128, le=10240)] = 128
    environment: Environment = {}
    # Set when the environment could not be read (a customer KMS key the reader may not use).
    environment_error: EnvironmentUnreadable | None = None
    kms_key_arn: Annotated[str | None, Field(pattern=_KMS_KEY_ARN)] = None
    vpc: VpcAttachment | None = None
    reserved_concurrency: Annotated[int | None, Field(ge=0)] = None
    tags: Tags = {}
    versions: list[FunctionVersion] = []
    aliases: list[Alias] = []
    event_source_mappings: list[EventSourceMapping] = []
    provisioned_concurrency: list[ProvisionedConcurrency] = []
    async_invoke: list[AsyncInvoke] = []

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        configurations: list[Function | FunctionVersion] = [self, *self.versions]
        for index, version in enumerate(configurations):
            where = "" if index == 0 else f"versions[{index - 1}]."
            if version.environment_error is not None:
                if version.environment:
                    problems.append(f"{where}environment: must be empty when environmentError is set")
                if not self.kms_key_arn:
                    problems.append(f"{where}environmentError: only a function with a kmsKeyArn has one")
        numbers = [version.version for version in self.versions]
        for number, count in Counter(numbers).items():
            if count > 1:
                problems.append(f"versions: version {number} is listed {count} times")
        published = set(numbers) | {"$LATEST"}
        for index, alias in enumerate(self.aliases):
            for number in (alias.version, *alias.additional_version_weights):
                if number not in published:
                    problems.append(f"aliases[{index}]: version {number} is not in versions")
            if alias.additional_version_weights and alias.version == "$LATEST":
                problems.append(f"aliases[{index}].additionalVersionWeights: not with version $LATEST")
        for name, count in Counter(alias.name for alias in self.aliases).items():
            if count > 1:
                problems.append(f"aliases: {name} is listed {count} times")
        qualifiers = set(numbers) | {alias.name for alias in self.aliases}
        qualified: list[tuple[str, list[str | None]]] = [
            ("eventSourceMappings", [item.qualifier for item in self.event_source_mappings]),
            ("provisionedConcurrency", [item.qualifier for item in self.provisioned_concurrency]),
            ("asyncInvoke", [item.qualifier for item in self.async_invoke]),
        ]
        for what, given in qualified:
            for index, qualifier in enumerate(given):
                if qualifier is not None and qualifier not in qualifiers:
                    problems.append(
                        f"{what}[{index}].qualifier: {qualifier} is not a version or alias of the function"
                    )
            if what == "eventSourceMappings":
                continue  # several mappings may invoke the same alias
            for repeated, count in Counter(given).items():
                if count > 1:
                    problems.append(f"{what}: {repeated or 'the function'} is listed {count} times")
        if self.reserved_concurrency is not None and self.provisioned_concurrency:
            total = sum(item.concurrency for item in self.provisioned_concurrency)
            if total > self.reserved_concurrency:
                problems.append(
                    f"provisionedConcurrency: {total} in all, more than reservedConcurrency "
                    f"{self.reserved_concurrency} (Lambda refuses that)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def environments(self) -> Iterable[dict[str, str]]:
        """``$LATEST``'s environment, then each published version's."""
        yield self.environment
        for version in self.versions:
            yield version.environment


# ---------------------------------------------------------------------------------------------
# The whole account.


class ReservedCacheNodes(Model):
    """A reserved-node purchase (DescribeReservedCacheNodes): paid for its whole term whether or not
    nodes run, so the decommission's saving leaves out the nodes it may cover."""

    id: Annotated[str, Field(min_length=1, max_length=256)]
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9-]+\.[a-z0-9]+$")]
    count: Annotated[int, Field(ge=1, le=1000)] = 1
    start: datetime
    years: Literal[1, 3] = 1
    offering_type: str = "No Upfront"
    product_description: str = "redis"


class StackSettings(Model):
    """How the rehearsal deploys the stack into the local account (``sam deploy`` parameters)."""

    project_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")] = PROJECT
    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")] = ENVIRONMENT
    # The probe's subnets (default: the Redis clients' subnets, else every subnet).
    probe_subnets: list[str] = []
    # The probe's security groups (default: a new "<projectName>-migration-probe" group).
    probe_security_groups: list[str] = []
    # The instance's group that gets the Redis rule (the RedisSecurityGroupId parameter). Absent:
    # the parameter is left empty, and an instance with several groups is refused at preflight.
    redis_security_group: str | None = None


class AccountDescription(Model):
    """An account to rehearse a migration in. See docs/operating.md, "Rehearse your own account"."""

    format_version: Literal[1] = FORMAT_VERSION
    region: Annotated[str, Field(pattern=_REGION)] = "us-east-1"
    vpc: Vpc
    security_groups: list[SecurityGroup] = []
    instance: Instance
    elasticache: ElastiCacheSource
    secrets: list[Secret] = []
    queues: list[Queue] = []
    functions: list[Function] = []
    stack: StackSettings = StackSettings()
    # The account's active reserved cache nodes (ElastiCache bills them whatever runs).
    reserved_cache_nodes: list[ReservedCacheNodes] = []
    # Facts describe-account could not represent (for the reader; the builder ignores them).
    notes: list[str] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        problems = _reference_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- questions the builder and the reports ask ---------------------------------------------

    def function(self, name: str) -> Function:
        """The described function called ``name``."""
        for function in self.functions:
            if function.name == name:
                return function
        raise KeyError(name)

    def redis_clients(self) -> list[str]:
        """Functions whose ``$LATEST`` or a published version uses the ElastiCache: any variable naming
        any of its endpoints, in any form (the workflow's own definition, clients/endpoints.py)."""
        names = self.elasticache.cache_names()
        return [
            function.name
            for function in self.functions
            if any(uses_cache(env, names) for env in function.environments())
        ]

    def secret(self, name: str) -> Secret:
        for secret in self.secrets:
            if secret.name == name:
                return secret
        raise KeyError(name)


def derived_endpoints(
    primary: str, replication_group_id: str | None, node_count: int, cluster_mode: str
) -> tuple[str | None, list[str]]:
    """The reader and node endpoints ElastiCache gives a cluster-mode-disabled group, from its primary.

    Two namings exist: with in-transit encryption ``master.<id>.<hash>.<region>.cache.amazonaws.com``,
    ``replica.<id>...`` and ``<id>-001.<id>...``; without, ``<id>.<hash>.ng.0001.<region>...``,
    ``<id>-ro.<hash>.ng.0001...`` and ``<id>-001.<hash>.0001...`` (as DescribeReplicationGroups
    answers them; e.g. https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/210).
    Another shape derives nothing.
    """
    if not replication_group_id or cluster_mode != "disabled":
        return None, []
    labels = primary.lower().split(".")
    numbers = [f"{replication_group_id}-{n:03d}" for n in range(1, node_count + 1)]
    if len(labels) > 2 and labels[0] == "master" and labels[1] == replication_group_id:
        domain = ".".join(labels[1:])
        return f"replica.{domain}", [f"{node}.{domain}" for node in numbers]
    if len(labels) > 1 and labels[0] == replication_group_id:
        rest = labels[1:]
        node_domain = ".".join(label for label in rest if label != "ng")
        return ".".join([f"{replication_group_id}-ro", *rest]), [f"{node}.{node_domain}" for node in numbers]
    return None, []


def _duplicates(names: Iterable[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _reference_problems(account: AccountDescription) -> list[str]:
    """Every reference that names nothing, every duplicate name, every address outside its range."""
    problems: list[str] = []
    vpc = account.vpc
    subnets = {subnet.name: subnet for subnet in vpc.subnets}
    tables = {table.name for table in vpc.route_tables}
    groups = {group.name for group in account.security_groups}
    secrets = {secret.name for secret in account.secrets}

    for what, names in (
        ("vpc.subnets", [s.name for s in vpc.subnets]),
        ("vpc.routeTables", [t.name for t in vpc.route_tables]),
        ("securityGroups", [g.name for g in account.security_groups]),
        ("secrets", [s.name for s in account.secrets]),
        ("queues", [q.name for q in account.queues]),
        ("functions", [f.name for f in account.functions]),
    ):
        problems += [f"{what}: {name!r} is described twice" for name in _duplicates(names)]

    def check(path: str, names: Iterable[str], known: Iterable[str], kind: str) -> None:
        known_names = set(known)
        for index, name in enumerate(names):
            if name not in known_names:
                problems.append(f"{path}[{index}]: unknown {kind} {name!r}")

    for index, subnet in enumerate(vpc.subnets):
        if not any(subnet.cidr.subnet_of(block) for block in (vpc.cidr, *vpc.secondary_cidrs)):
            problems.append(f"vpc.subnets[{index}].cidr: {subnet.cidr} is not inside the VPC's CIDR blocks")
        if subnet.availability_zone and not subnet.availability_zone.startswith(account.region):
            problems.append(
                f"vpc.subnets[{index}].availabilityZone: "
                f"{subnet.availability_zone} is not in {account.region}"
            )
    for index, block in enumerate(vpc.secondary_cidrs):
        if any(block.overlaps(other) for other in (vpc.cidr, *vpc.secondary_cidrs[:index])):
            problems.append(f"vpc.secondaryCidrs[{index}]: {block} overlaps another of the VPC's CIDR blocks")
    for index, subnet in enumerate(vpc.subnets):
        for other in vpc.subnets[:index]:
            if subnet.cidr.overlaps(other.cidr):
                problems.append(f"vpc.subnets[{index}].cidr: {subnet.cidr} overlaps subnet {other.name}")
    if sum(1 for table in vpc.route_tables if table.main) > 1:
        problems.append("vpc.routeTables: more than one main route table")
    associated = Counter(name for table in vpc.route_tables for name in table.subnets)
    problems += [
        f"vpc.routeTables: subnet {name!r} is associated twice" for name, n in associated.items() if n > 1
    ]
    for index, table in enumerate(vpc.route_tables):
        check(f"vpc.routeTables[{index}].subnets", table.subnets, subnets, "subnet")
        for r, route in enumerate(table.routes):
            if route.nat_gateway_subnet and route.nat_gateway_subnet not in subnets:
                problems.append(
                    f"vpc.routeTables[{index}].routes[{r}].natGatewaySubnet: unknown subnet "
                    f"{route.nat_gateway_subnet!r}"
                )
    for index, endpoint in enumerate(vpc.endpoints):
        check(f"vpc.endpoints[{index}].subnets", endpoint.subnets, subnets, "subnet")
        check(f"vpc.endpoints[{index}].securityGroups", endpoint.security_groups, groups, "security group")
        check(f"vpc.endpoints[{index}].routeTables", endpoint.route_tables, tables, "route table")
        if endpoint.type == "Interface" and not endpoint.subnets:
            problems.append(f"vpc.endpoints[{index}].subnets: an Interface endpoint needs at least one")
    for index, group in enumerate(account.security_groups):
        for direction, rules in (("ingress", group.ingress), ("egress", group.egress or [])):
            for r, rule in enumerate(rules):
                if rule.group is not None and rule.group not in groups:
                    problems.append(
                        f"securityGroups[{index}].{direction}[{r}].group: "
                        f"unknown security group {rule.group!r}"
                    )

    instance = account.instance
    check("instance.securityGroups", instance.security_groups, groups, "security group")
    if instance.subnet is not None and instance.subnet not in subnets:
        problems.append(f"instance.subnet: unknown subnet {instance.subnet!r}")
    home = subnets.get(instance.subnet or vpc.subnets[0].name)
    if instance.private_ip is not None and home is not None and instance.private_ip not in home.cidr:
        problems.append(
            f"instance.privateIp: {instance.private_ip} is not inside subnet {home.name} ({home.cidr})"
        )

    cache = account.elasticache
    check("elasticache.securityGroups", cache.security_groups, groups, "security group")
    if cache.subnet_group is not None:
        check("elasticache.subnetGroup.subnets", cache.subnet_group.subnets, subnets, "subnet")
    if cache.auth_token_secret is not None and cache.auth_token_secret not in secrets:
        problems.append(f"elasticache.authTokenSecret: unknown secret {cache.auth_token_secret!r}")
    details = [cache.subnet_group, cache.parameter_group, cache.engine_version, cache.node_type]
    if cache.replication_group_id is None and (any(details) or cache.security_groups):
        problems.append(
            "elasticache.replicationGroupId: required when the replication group's details are given"
        )

    queues = {queue.name for queue in account.queues}
    for index, queue in enumerate(account.queues):
        if queue.dead_letter_queue is not None and queue.dead_letter_queue not in queues:
            problems.append(f"queues[{index}].deadLetterQueue: unknown queue {queue.dead_letter_queue!r}")
        if queue.dead_letter_queue == queue.name:
            problems.append(f"queues[{index}].deadLetterQueue: a queue cannot be its own dead-letter queue")
    for index, function in enumerate(account.functions):
        for m, mapping in enumerate(function.event_source_mappings):
            if mapping.queue is not None and mapping.queue not in queues:
                problems.append(
                    f"functions[{index}].eventSourceMappings[{m}].queue: unknown queue {mapping.queue!r}"
                )
        if function.vpc is not None:
            check(f"functions[{index}].vpc.subnets", function.vpc.subnets, subnets, "subnet")
            check(
                f"functions[{index}].vpc.securityGroups",
                function.vpc.security_groups,
                groups,
                "security group",
            )

    stack = account.stack
    check("stack.probeSubnets", stack.probe_subnets, subnets, "subnet")
    check("stack.probeSecurityGroups", stack.probe_security_groups, groups, "security group")
    if stack.redis_security_group is not None and stack.redis_security_group not in instance.security_groups:
        problems.append(
            f"stack.redisSecurityGroup: {stack.redis_security_group!r} is not one of instance.securityGroups"
        )
    return problems


# ---------------------------------------------------------------------------------------------
# Reading and writing description files.


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key
            text += " (the name)"
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_problems(error: ValidationError) -> str:
    """Every problem on one line, each naming its field by its path (``functions[2].vpc.subnets``)."""
    problems = []
    for item in error.errors():
        location = _location(tuple(item["loc"]))
        message = "unknown field" if item["type"] == "extra_forbidden" else str(item["msg"])
        message = message.removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


def parse_account(document: object, source: str = "account") -> AccountDescription:
    """Validate a parsed document (a dict) as an account description, naming every bad field."""
    try:
        return AccountDescription.model_validate(document)
    except ValidationError as error:
        raise AccountDescriptionError(f"{source}: {describe_problems(error)}") from None


def load_account(path: Path) -> AccountDescription:
    """Read an account description from a YAML (``.yaml``/``.yml``) or JSON file.

    Stricter than the parsers' defaults, so that what the file says is what is rehearsed: a key
    given twice in one mapping is refused (YAML and JSON would silently keep the last), nesting
    deeper than :data:`MAX_NESTING` is refused with its position (the parsers recurse, and a
    RecursionError is not an answer), and a UTF-8 byte-order mark is accepted (editors on Windows
    write one). Every error starts with the file's name; a syntax error gives its line and column.
    """
    try:
        # utf-8-sig: a leading byte-order mark is dropped (json.loads refuses one).
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise AccountDescriptionError(
            f"{path}: not UTF-8 text (byte {error.start}: {error.reason})"
        ) from None
    except OSError as error:
        raise AccountDescriptionError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = _read_json(text) if path.suffix.lower() == ".json" else _read_yaml(text)
    except _DocumentError as error:
        raise AccountDescriptionError(f"{path}: not valid {_format_of(path)}: {error}") from None
    if not isinstance(document, dict):
        raise AccountDescriptionError(f"{path}: must hold a mapping (the account description)")
    return parse_account(document, str(path))


# The deepest a valid description goes is about seven levels (functions[0].versions[0].environmentError
# .errorCode); far below the parsers' recursion limit, far above any real file.
MAX_NESTING = 32


class _DocumentError(ValueError):
    """A file that does not parse as a document: the message gives the position when known."""


def _at(line: int, column: int) -> str:
    """A position as editors show it (1-based)."""
    return f"line {line + 1}, column {column + 1}"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and nesting deeper than MAX_NESTING."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # compose_node recurses once per level of nesting: count the levels on the way down.
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _DocumentError(
                    f"{_at(mark.line, mark.column)}: nested more than {MAX_NESTING} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *anchor" merges another mapping; its keys may be overridden
            key = self.construct_object(key_node, deep=True)
            marker = key if isinstance(key, str | int | float | bool) or key is None else repr(key)
            if marker in seen:
                first = seen[marker]
                raise _DocumentError(
                    f"{_at(key_node.start_mark.line, key_node.start_mark.column)}: duplicate key "
                    f"{key!r} (first at line {first.line + 1}); a key may appear once in a mapping"
                )
            seen[marker] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _read_yaml(text: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{_at(mark.line, mark.column)}: " if mark is not None else ""
        problem = error.problem or type(error).__name__
        context = f" ({error.context})" if error.context else ""
        raise _DocumentError(f"{where}{problem}{context}") from None
    except yaml.YAMLError as error:
        raise _DocumentError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None


def _read_json(text: str) -> object:
    _check_json_nesting(text)

    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        counts = Counter(key for key, _ in pairs)
        twice = sorted(key for key, count in counts.items() if count > 1)
        if twice:
            raise _DocumentError(f"duplicate key {twice[0]!r}; a key may appear once in an object")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        raise _DocumentError(f"{_at(error.lineno - 1, error.colno - 1)}: {error.msg}") from None


def _check_json_nesting(text: str) -> None:
    """Refuse nesting deeper than MAX_NESTING before json.loads recurses into it."""
    depth = 0
    in_string = escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                line = text.count("\n", 0, offset)
                column = offset - (text.rfind("\n", 0, offset) + 1)
                raise _DocumentError(f"{_at(line, column)}: nested more than {MAX_NESTING} levels deep")
        elif char in "]}":
            depth -= 1


def _format_of(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "YAML"


def dump_account(account: AccountDescription) -> dict[str, Any]:
    """The description as a document: camelCase keys, defaults left out."""
    document: dict[str, Any] = account.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    # Always say which region (the default is easy to miss) and which format version.
    return {"formatVersion": account.format_version, "region": account.region, **document}


def save_account(account: AccountDescription, path: Path) -> None:
    """Write the description as YAML (``.yaml``/``.yml``) or JSON (anything else), atomically."""
    document = dump_account(account)
    if path.suffix.lower() in {".yaml", ".yml"}:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    else:
        text = json.dumps(document, indent=2) + "\n"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


# ---------------------------------------------------------------------------------------------
# Today's sample account.


def _sample_clients(client_count: int, secret_arn: str) -> list[Function]:
    return [
        Function(
            name=f"campaign-worker-{n:03d}",
            environment={
                REDIS_HOST: ELASTICACHE_ENDPOINT,
                "REDIS_PORT": "6379",
                OLD_AUTH_KEY: secret_arn,
                "LOG_LEVEL": "INFO",
                "QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/123456789012/campaign-{n:03d}",
                "FEATURE_FLAGS": '{"dialer": true, "retries": 3}',
                "ASTERISK_AMI_HOST": "asterisk.internal",
            },
            vpc=VpcAttachment(
                subnets=["private-a", "private-b"], security_groups=[f"{PROJECT}-lambda-clients"]
            ),
        )
        for n in range(1, client_count + 1)
    ]


def sample_account(client_count: int = 5) -> AccountDescription:
    """The account `rehearse` builds without ``--account`` (events/account-sample.yaml with N clients).

    A VPC with two private subnets behind a NAT gateway; the instance ("asterisk"); an
    ElastiCache replication group whose AUTH token the clients read from an old secret;
    ``client_count`` client functions with unrelated variables of their own; and three
    functions that must not change (one uses another Redis).
    """
    auth_secret = f"{PROJECT}-elasticache-auth-{ENVIRONMENT}"
    # Stands for the real ARN; the builder rewrites it to the local secret's.
    auth_secret_arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{auth_secret}-AbCdEf"
    group = f"{PROJECT}-{{}}".format
    return AccountDescription(
        region="us-east-1",
        vpc=Vpc(
            name=PROJECT,
            cidr=ipaddress.IPv4Network(VPC_CIDR),
            subnets=[
                Subnet(
                    name="private-a",
                    cidr=ipaddress.IPv4Network("10.42.1.0/24"),
                    availability_zone="us-east-1a",
                ),
                Subnet(
                    name="private-b",
                    cidr=ipaddress.IPv4Network("10.42.2.0/24"),
                    availability_zone="us-east-1b",
                ),
                Subnet(
                    name="public-a",
                    cidr=ipaddress.IPv4Network("10.42.0.0/24"),
                    availability_zone="us-east-1a",
                ),
            ],
            route_tables=[
                RouteTable(
                    name="private",
                    subnets=["private-a", "private-b"],
                    routes=[
                        Route(
                            destination=ipaddress.IPv4Network("0.0.0.0/0"),
                            target="nat-gateway",
                            nat_gateway_subnet="public-a",
                        )
                    ],
                ),
                RouteTable(
                    name="public",
                    subnets=["public-a"],
                    routes=[Route(destination=ipaddress.IPv4Network("0.0.0.0/0"), target="internet-gateway")],
                ),
            ],
        ),
        security_groups=[
            SecurityGroup(name=group("redis-host"), description="redis-host"),
            SecurityGroup(name=group("lambda-clients"), description="lambda-clients"),
            SecurityGroup(name=group("migration-probe"), description="migration-probe"),
            SecurityGroup(
                name=group("elasticache"),
                description="elasticache",
                ingress=[
                    Rule(
                        protocol="tcp",
                        from_port=6379,
                        to_port=6379,
                        group=group("lambda-clients"),
                        description="clients",
                    )
                ],
            ),
        ],
        instance=Instance(
            subnet="private-a",
            security_groups=[group("redis-host")],
            instance_type="t3.small",
            os_name="Amazon Linux 2023",
            tags={"Name": "asterisk"},
        ),
        elasticache=ElastiCacheSource(
            endpoint=ELASTICACHE_ENDPOINT,
            port=6379,
            replication_group_id="campaign-redis",
            description="campaign system cache",
            engine="redis",
            engine_version="7.1",
            node_type="cache.t4g.small",
            node_count=1,
            subnet_group=CacheSubnetGroup(name=f"{PROJECT}-cache", subnets=["private-a", "private-b"]),
            parameter_group=CacheParameterGroup(name="default.redis7"),
            security_groups=[group("elasticache")],
            auth_token_enabled=True,
            auth_token_secret=auth_secret,
            transit_encryption=True,
            tags={"Project": PROJECT},
        ),
        secrets=[
            Secret(
                name=auth_secret,
                arn=auth_secret_arn,
                description="the ElastiCache AUTH token",
                value=json.dumps({"token": "old-auth-token"}),
            )
        ],
        functions=[
            *_sample_clients(client_count, auth_secret_arn),
            Function(
                name="campaign-billing-report",
                environment={"LOG_LEVEL": "WARN", "BUCKET": "campaign-reports"},
            ),
            Function(name="campaign-audio-transcoder", environment={"FFMPEG_PRESET": "fast"}),
            # Uses another Redis: discovery must leave it alone.
            Function(
                name="analytics-cache-user",
                environment={
                    REDIS_HOST: "analytics.xyz789.0001.use1.cache.amazonaws.com",
                    "REDIS_PORT": "6379",
                },
                vpc=VpcAttachment(
                    subnets=["private-a", "private-b"], security_groups=[group("lambda-clients")]
                ),
            ),
        ],
        stack=StackSettings(
            project_name=PROJECT, environment=ENVIRONMENT, probe_security_groups=[group("migration-probe")]
        ),
    )
