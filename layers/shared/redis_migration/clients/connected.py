"""Who is connected to a Redis, and what each client is: a Lambda function, an EC2 instance, ...

``CLIENT LIST`` (allowed on ElastiCache) names each connection's address; our own connections
(``CLIENT SETNAME redis-migration``, see :mod:`redis_migration.data.link`) are left out. Each
address is then looked up among the account's network interfaces (``DescribeNetworkInterfaces``
filtered by private IP, paginated, 100 addresses a call):

- ``lambda``: a Lambda Hyperplane interface (``InterfaceType`` ``lambda``). Lambda shares one
  interface between the functions with the same subnet and security groups, so the interface
  names candidates: every function (of those given) attached to its subnet with exactly its
  security groups.
- ``ec2-instance``: an interface attached to an instance (its ``Name`` tag when readable);
- ``ecs-task``: an ``awsvpc`` task's interface (its description is the ECS attachment ARN);
- ``nat-gateway``, ``vpc-endpoint``, ``load-balancer``: what AWS itself reports;
- ``unknown``: no interface in this account and region has the address (a peered VPC, on
  premises, another account), or one we cannot tell.

:func:`describe_clients` says, for each, whether the migration switches it (``yes``: every
candidate function is switched; ``partly``; ``no``; ``unknown``) and names, in one line each,
every client it will not switch: the plan and the report show those lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from redis_migration.data.link import CLIENT_NAME, RedisLink
from redis_migration.models import Model

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

ADDRESSES_PER_CALL = 100
MAX_INTERFACE_PAGES = 100

ClientKind = Literal[
    "lambda", "ec2-instance", "ecs-task", "nat-gateway", "vpc-endpoint", "load-balancer", "unknown"
]
Switched = Literal["yes", "partly", "no", "unknown"]


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


class FunctionNetwork(Model):
    """A function's VPC attachment, to match it with a Lambda interface."""

    subnet_ids: list[str]
    security_group_ids: list[str]


class ClientGroup(Model):
    """The connections from one address, what they are and whether the migration switches them."""

    ip: str
    connections: int
    names: list[str] = []
    last_commands: list[str] = []
    max_idle_seconds: int = 0
    origin: ClientOrigin
    switched: Switched
    note: str = ""


class ClientListing(Model):
    """Every client of a Redis (ours excluded), grouped by address, and those not switched."""

    endpoint: str
    connections: int
    clients: list[ClientGroup]
    # One line per client the migration will not switch (for the plan and the report).
    not_switched: list[str] = Field(default_factory=list)


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
            )
        )
    return connections


def list_connections(link: RedisLink) -> list[RedisConnection]:
    """The server's client connections, without ours (named ``redis-migration``)."""
    own = int(link.command("CLIENT", "ID"))
    raw = link.command("CLIENT", "LIST")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return [c for c in parse_client_list(text) if c.id != own and c.name != CLIENT_NAME]


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
    }
    if kind_text == "lambda" or description.startswith("AWS Lambda VPC ENI"):
        sharing = sorted(
            name
            for name, network in functions.items()
            if subnet in network.subnet_ids and sorted(network.security_group_ids) == groups
        )
        return ClientOrigin(kind="lambda", functions=sharing, **base)
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


def _decide(
    origin: ClientOrigin, switched_functions: set[str], instance_id: str | None
) -> tuple[Switched, str]:
    if origin.kind == "lambda":
        if not origin.functions:
            return "unknown", "a Lambda interface none of the listed functions uses"
        moved = [f for f in origin.functions if f in switched_functions]
        if len(moved) == len(origin.functions):
            return "yes", ""
        left = [f for f in origin.functions if f not in switched_functions]
        return ("partly" if moved else "no"), f"not switched: {', '.join(left)}"
    if origin.kind == "ec2-instance" and instance_id is not None and origin.instance_id == instance_id:
        return "no", "a process on the instance that will run Redis (e.g. a worker): see hostServices"
    if origin.kind == "unknown":
        return "unknown", origin.description
    return "no", "the migration switches Lambda functions only"


def _label(group: ClientGroup) -> str:
    origin = group.origin
    if origin.kind == "lambda":
        what = (
            f"Lambda interface {origin.interface_id} ({', '.join(origin.functions) or 'no listed function'})"
        )
    elif origin.kind == "ec2-instance":
        named = f" ({origin.instance_name})" if origin.instance_name else ""
        what = f"EC2 instance {origin.instance_id}{named}"
    elif origin.kind == "unknown":
        what = f"unknown client {group.ip}"
    else:
        what = f"{origin.kind} {origin.interface_id or group.ip}"
    commands = f", last command {', '.join(group.last_commands[:3])}" if group.last_commands else ""
    return f"{what} at {group.ip}: {group.connections} connection(s){commands}; {group.note}"


def describe_clients(
    endpoint: str,
    connections: Sequence[RedisConnection],
    interfaces: Mapping[str, Mapping[str, Any]],
    functions: Mapping[str, FunctionNetwork],
    switched_functions: Iterable[str],
    *,
    instance_id: str | None = None,
    instance_names: Mapping[str, str] | None = None,
) -> ClientListing:
    """Group ``connections`` by address, name each one's origin and whether the migration switches
    it (``switched_functions``; ``instance_id``: the instance that will run Redis)."""
    switched = set(switched_functions)
    by_ip: dict[str, list[RedisConnection]] = {}
    for connection in connections:
        by_ip.setdefault(connection.ip, []).append(connection)
    groups = []
    for ip, group in sorted(by_ip.items()):
        origin = origin_of(interfaces.get(ip), functions, instance_names)
        decision, note = _decide(origin, switched, instance_id)
        groups.append(
            ClientGroup(
                ip=ip,
                connections=len(group),
                names=sorted({c.name for c in group if c.name}),
                last_commands=sorted({c.last_command for c in group if c.last_command}),
                max_idle_seconds=max(c.idle_seconds for c in group),
                origin=origin,
                switched=decision,
                note=note,
            )
        )
    return ClientListing(
        endpoint=endpoint,
        connections=len(connections),
        clients=groups,
        not_switched=[_label(g) for g in groups if g.switched != "yes"],
    )


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


def list_clients(
    link: RedisLink,
    ec2: EC2Client,
    functions: Mapping[str, FunctionNetwork],
    switched_functions: Iterable[str],
    *,
    instance_id: str | None = None,
) -> ClientListing:
    """CLIENT LIST of ``link``'s server, each address identified through EC2 (see the module doc)."""
    connections = list_connections(link)
    interfaces = find_interfaces(ec2, (c.ip for c in connections))
    attached = [
        i["Attachment"]["InstanceId"]
        for i in interfaces.values()
        if (i.get("Attachment") or {}).get("InstanceId")
    ]
    return describe_clients(
        link.endpoint.host,
        connections,
        interfaces,
        functions,
        switched_functions,
        instance_id=instance_id,
        instance_names=instance_names(ec2, attached),
    )
