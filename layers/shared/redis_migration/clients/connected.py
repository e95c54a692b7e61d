"""Who is connected to ElastiCache, node by node, and what each client is.

``CLIENT LIST`` (allowed on ElastiCache) shows only the connections of the node it runs on, so
every node is asked (:func:`elasticache_nodes`: the replicas and the reader endpoint serve clients
too). Left out of what it shows:

- our own connection, by its ``CLIENT ID`` (never by name: a client may call itself
  ``redis-migration`` too, and it must not disappear);
- the replication links between the nodes (flags ``S`` and ``M``);
- ElastiCache's own monitoring connections (:func:`elasticache_own`). AWS says that it keeps
  "two to four" (lately "4 to 6") connections on each node to monitor it ("Metrics for Valkey and
  Redis OSS", CurrConnections,
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html), but not how
  they look in ``CLIENT LIST``. The rule is therefore the conservative one: a connection is
  ElastiCache's own only when no client could have made it, from a loopback address (a client in
  the VPC connects from its interface's private address) or from one of ElastiCache's own network
  interfaces (``RequesterId`` ``amazon-elasticache``). Anything else is a client and is named,
  with its last command and idle time.

Each remaining address is looked up among the account's network interfaces
(``DescribeNetworkInterfaces`` filtered by private IP, paginated, 100 addresses a call):

- ``lambda``: a Lambda Hyperplane interface (``InterfaceType`` ``lambda``). Lambda shares one
  interface between the functions with the same subnet and security groups ("Giving Lambda
  functions access to resources in an Amazon VPC",
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html), so an address names
  candidates, never one function: every function attached to its subnet with exactly its
  security groups (:func:`candidates`).
- ``ec2-instance``: an interface attached to an instance (its ``Name`` tag when readable);
- ``ecs-task``: an ``awsvpc`` task's interface (its description is the ECS attachment ARN);
- ``nat-gateway``, ``vpc-endpoint``, ``load-balancer``: what AWS itself reports;
- ``unknown``: no interface in this account and region has the address (a peered VPC, on
  premises, another account), or one we cannot tell.

What a client means for a migration (switched, frozen, refused) is :mod:`redis_migration.clients.writers`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from redis_migration.clients.endpoints import endpoint_addresses, normalized_host
from redis_migration.models import Model

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from redis_migration.aws import AwsClients

    # redis-py only where a connection is listed: the models here are read by functions that never connect.
    from redis_migration.data.link import RedisLink

ADDRESSES_PER_CALL = 100
MAX_INTERFACE_PAGES = 100
# ElastiCache's own network interfaces (one per node). https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/VPCs.html
ELASTICACHE_REQUESTER = "amazon-elasticache"
# A replica's link to its primary (M) and the primary's link to a replica (S).
REPLICATION_FLAGS = frozenset("SM")
# Client entries a listing carries (one per address and node); more are counted, not named: a
# state's payload is at most 256 KiB.
MAX_LISTED_CLIENTS = 100

ClientKind = Literal[
    "lambda", "ec2-instance", "ecs-task", "nat-gateway", "vpc-endpoint", "load-balancer", "unknown"
]
OwnConnection = Literal["ours", "replication", "elasticache"]


class RedisConnection(Model):
    """One line of CLIENT LIST."""

    id: int
    ip: str
    port: int
    name: str = ""
    age_seconds: int = 0
    idle_seconds: int = 0
    db: int = 0
    last_command: str = ""
    lib_name: str = ""
    flags: str = ""


class ClientOrigin(Model):
    """What an address belongs to, from its network interface."""

    kind: ClientKind
    interface_id: str | None = None
    description: str = ""
    subnet_id: str | None = None
    security_group_ids: list[str] = []
    instance_id: str | None = None
    instance_name: str | None = None
    # Lambda: the functions (of those given) that share the interface.
    functions: list[str] = []
    requester_id: str | None = None


class FunctionNetwork(Model):
    """A function's VPC attachment, to match it with a Lambda interface."""

    subnet_ids: list[str]
    security_group_ids: list[str]


class ClientCheck(Model):
    """Where ListElastiCacheClients connects (inside the VPC): every node of the replication group.

    CLIENT LIST shows only the connections of the node it runs on, so each node is asked.
    """

    nodes: list[str]
    port: int
    tls: bool
    secret_arn: str | None


class ElastiCacheClient(Model):
    """The connections from one address to one node, and what the address belongs to (never a password)."""

    node: str
    ip: str
    connections: int
    names: list[str] = []
    last_commands: list[str] = []
    max_idle_seconds: int = 0
    # The most recently used of the connections: how long ago this address last sent a command.
    min_idle_seconds: int = 0
    # What EC2 says the address is: a Lambda interface and its functions, an instance, unknown ...
    origin: str
    kind: ClientKind = "unknown"
    interface_id: str | None = None
    subnet_id: str | None = None
    security_group_ids: list[str] = []
    instance_id: str | None = None

    def describe(self) -> str:
        named = f" named {', '.join(repr(name) for name in self.names)}" if self.names else ""
        commands = f", last command {', '.join(self.last_commands[:3])}" if self.last_commands else ""
        return (
            f"{self.origin} at {self.ip}: {self.connections} connection(s) to {self.node}{named}"
            f"{commands}, idle up to {self.max_idle_seconds} s"
        )


class ClientListOutput(Model):
    clients: list[ElastiCacheClient]
    # One line per client, for the refusal.
    lines: list[str]
    # Connections left out: ours, the nodes' replication links and ElastiCache's monitoring.
    left_out: int = 0
    # ElastiCache's own among them (monitoring and replication), for the report.
    elasticache_connections: int = 0
    # The nodes asked.
    nodes: list[str] = []
    # Clients beyond MAX_LISTED_CLIENTS: counted, not named.
    more_clients: int = 0


def parse_client_list(text: str) -> list[RedisConnection]:
    """CLIENT LIST's lines (``id=7 addr=10.0.1.5:51234 ... name=x ... cmd=get``) as connections.

    Values never contain spaces (Redis refuses a name with one), so splitting on spaces is exact.
    """
    connections = []
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "id" not in fields or "addr" not in fields:
            continue
        host, _, port = fields["addr"].rpartition(":")
        connections.append(
            RedisConnection(
                id=int(fields["id"]),
                ip=host.strip("[]"),
                port=int(port or 0),
                name=fields.get("name", ""),
                age_seconds=int(fields.get("age", 0)),
                idle_seconds=int(fields.get("idle", 0)),
                db=int(fields.get("db", 0)),
                last_command=fields.get("cmd", ""),
                lib_name=fields.get("lib-name", ""),
                flags=fields.get("flags", ""),
            )
        )
    return connections


def list_connections(link: RedisLink) -> list[RedisConnection]:
    """The server's connections without ours: left out by our ``CLIENT ID``, not by our name (a
    client that names itself ``redis-migration`` is still a client)."""
    own = int(link.command("CLIENT", "ID"))
    raw = link.command("CLIENT", "LIST")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return [c for c in parse_client_list(text) if c.id != own]


def elasticache_own(connection: RedisConnection, interface: Mapping[str, Any] | None) -> OwnConnection | None:
    """Whether a connection is ElastiCache's own (see the module doc): a replication link, or
    monitoring from the node's loopback or one of ElastiCache's interfaces; None: a client."""
    if set(connection.flags) & REPLICATION_FLAGS:
        return "replication"
    try:
        loopback = ipaddress.ip_address(connection.ip).is_loopback
    except ValueError:
        loopback = False
    if loopback or (interface or {}).get("RequesterId") == ELASTICACHE_REQUESTER:
        return "elasticache"
    return None


def find_interfaces(ec2: EC2Client, addresses: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Private IP -> the network interface that holds it (DescribeNetworkInterfaces, paginated)."""
    wanted = sorted(set(addresses))
    found: dict[str, dict[str, Any]] = {}
    paginator = ec2.get_paginator("describe_network_interfaces")
    for start in range(0, len(wanted), ADDRESSES_PER_CALL):
        chunk = wanted[start : start + ADDRESSES_PER_CALL]
        pages = paginator.paginate(
            Filters=[{"Name": "addresses.private-ip-address", "Values": chunk}],
            PaginationConfig={"MaxItems": MAX_INTERFACE_PAGES * 1000, "PageSize": 1000},
        )
        for page in pages:
            for interface in page.get("NetworkInterfaces", []):
                for address in interface.get("PrivateIpAddresses", []):
                    ip = address.get("PrivateIpAddress")
                    if ip in chunk:
                        found[ip] = dict(interface)
    return found


def candidates(
    subnet_id: str | None, security_group_ids: Iterable[str], functions: Mapping[str, FunctionNetwork]
) -> list[str]:
    """The functions a Lambda interface may carry: attached to its subnet with exactly its security
    groups. Lambda tells no more: one of them, or several, made the connection."""
    groups = sorted(security_group_ids)
    return sorted(
        name
        for name, network in functions.items()
        if subnet_id in network.subnet_ids and sorted(network.security_group_ids) == groups
    )


def origin_of(
    interface: Mapping[str, Any] | None,
    functions: Mapping[str, FunctionNetwork],
    instance_names: Mapping[str, str] | None = None,
) -> ClientOrigin:
    """What a network interface says its owner is (see the module doc); None: ``unknown``."""
    if interface is None:
        return ClientOrigin(
            kind="unknown", description="no network interface in this account has the address"
        )
    kind_text = str(interface.get("InterfaceType", "interface"))
    description = str(interface.get("Description", ""))
    groups = sorted(g["GroupId"] for g in interface.get("Groups", []) if "GroupId" in g)
    subnet = interface.get("SubnetId")
    instance_id = (interface.get("Attachment") or {}).get("InstanceId")
    base: dict[str, Any] = {
        "interface_id": interface.get("NetworkInterfaceId"),
        "description": description,
        "subnet_id": subnet,
        "security_group_ids": groups,
        "requester_id": interface.get("RequesterId"),
    }
    if kind_text == "lambda" or description.startswith("AWS Lambda VPC ENI"):
        return ClientOrigin(kind="lambda", functions=candidates(subnet, groups, functions), **base)
    if description.startswith("arn:aws:ecs:") or "ecs" in str(interface.get("RequesterId", "")).lower():
        return ClientOrigin(kind="ecs-task", **base)
    if kind_text == "nat_gateway":
        return ClientOrigin(kind="nat-gateway", **base)
    if kind_text in ("vpc_endpoint", "gateway_load_balancer_endpoint"):
        return ClientOrigin(kind="vpc-endpoint", **base)
    if kind_text in ("network_load_balancer", "gateway_load_balancer") or description.startswith("ELB "):
        return ClientOrigin(kind="load-balancer", **base)
    if instance_id:
        name = (instance_names or {}).get(instance_id)
        return ClientOrigin(kind="ec2-instance", instance_id=instance_id, instance_name=name, **base)
    return ClientOrigin(kind="unknown", **base)


def instance_names(ec2: EC2Client, instance_ids: Iterable[str]) -> dict[str, str]:
    """Instance id -> its Name tag (DescribeInstances, paginated)."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    names = {}
    for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                for tag in instance.get("Tags", []):
                    if tag.get("Key") == "Name":
                        names[instance["InstanceId"]] = str(tag.get("Value", ""))
    return names


def node_addresses(group: Mapping[str, Any]) -> list[str]:
    """One address per node of a replication group (DescribeReplicationGroups' node endpoints):
    CLIENT LIST is per node. The primary endpoint when the nodes have none listed."""
    nodes = [
        str((member.get("ReadEndpoint") or {}).get("Address", ""))
        for node_group in group.get("NodeGroups") or []
        for member in node_group.get("NodeGroupMembers") or []
    ]
    nodes = [node.lower() for node in nodes if node]
    if nodes:
        return list(dict.fromkeys(nodes))
    for node_group in group.get("NodeGroups") or []:
        primary = (node_group.get("PrimaryEndpoint") or {}).get("Address")
        if primary:
            return [str(primary).lower()]
    configuration = (group.get("ConfigurationEndpoint") or {}).get("Address")
    return [str(configuration).lower()] if configuration else []


def replication_group_of(endpoint: str, aws: AwsClients) -> dict[str, Any] | None:
    """The replication group that answers ``endpoint`` (any of its names, ``host:port`` accepted),
    as DescribeReplicationGroups describes it; None when no group of the account and region has it."""
    host = normalized_host(endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint)
    paginator = aws.elasticache.get_paginator("describe_replication_groups")
    for page in paginator.paginate():
        for group in page.get("ReplicationGroups") or []:
            if host in endpoint_addresses(group):
                return dict(group)
    return None


def elasticache_nodes(endpoint: str, aws: AwsClients) -> list[str]:
    """The node addresses of the replication group that answers ``endpoint``, or ``[]`` when no
    group of the account and region has that name (then only the endpoint itself can be asked)."""
    group = replication_group_of(endpoint, aws)
    return node_addresses(group) if group is not None else []
