"""ListElastiCacheClients: who is still connected to ElastiCache, by CLIENT LIST on every node.

Runs inside the VPC (the function has the stack's VPC configuration) through
:class:`~redis_migration.data.link.RedisLink`: TLS with the default trust store when the group has
in-transit encryption, the AUTH token read from its secret here (it never travels). Each address is
named by :mod:`redis_migration.clients.connected` from the account's network interfaces: a Lambda
interface (by its subnet and security groups: the functions attached with exactly those share it),
an instance, a task ... . The function calls only Secrets Manager and EC2 from the VPC, the two
services the stack's network preflight makes sure it can reach (``preflight_network.IN_VPC_CALLS``).

Left out: our own connections (named ``redis-migration``) and the replication links between the
nodes (flags ``S`` and ``M``, or an address of one of ElastiCache's own interfaces). Everything else
is a client the refusal names.
"""

from __future__ import annotations

from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.clients.connected import (
    RedisConnection,
    find_interfaces,
    list_connections,
    origin_of,
)
from redis_migration.data.link import RedisEndpoint, RedisLink, read_credentials
from redis_migration.decommission.models import ClientCheck, ClientListOutput, ElastiCacheClient

# Replica-to-primary links: a replica's link to its primary (M) and the primary's to a replica (S).
_REPLICATION_FLAGS = frozenset("SM")
ELASTICACHE_REQUESTER = "amazon-elasticache"


def _replication_ids(raw: Any) -> set[int]:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    ids = set()
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if set(fields.get("flags", "")) & _REPLICATION_FLAGS and fields.get("id", "").isdigit():
            ids.add(int(fields["id"]))
    return ids


def _origin_label(interface: dict[str, Any] | None) -> str:
    origin = origin_of(interface, {})
    if origin.kind == "lambda":
        return (
            f"Lambda interface {origin.interface_id} (the functions attached to {origin.subnet_id} "
            f"with security groups {', '.join(origin.security_group_ids)})"
        )
    if origin.kind == "ec2-instance":
        named = f" ({origin.instance_name})" if origin.instance_name else ""
        return f"EC2 instance {origin.instance_id}{named}"
    if origin.kind == "unknown":
        return f"unknown client ({origin.description})" if origin.description else "unknown client"
    return f"{origin.kind} {origin.interface_id}"


def list_elasticache_clients(given: ClientCheck, aws: AwsClients) -> ClientListOutput:
    """Every client of every node except ours and the nodes' replication links, each named."""
    clients: list[ElastiCacheClient] = []
    left_out = 0
    for node in given.nodes:
        endpoint = RedisEndpoint(host=node, port=given.port, tls=given.tls, secret_arn=given.secret_arn)
        with RedisLink(endpoint, read_credentials(endpoint, aws)) as link:
            replication = _replication_ids(link.command("CLIENT", "LIST"))
            connections = list_connections(link)
        with aws_errors_as_transient():
            interfaces = find_interfaces(aws.ec2, (c.ip for c in connections))
        by_ip: dict[str, list[RedisConnection]] = {}
        for connection in connections:
            interface = interfaces.get(connection.ip) or {}
            if connection.id in replication or interface.get("RequesterId") == ELASTICACHE_REQUESTER:
                left_out += 1
                continue
            by_ip.setdefault(connection.ip, []).append(connection)
        for ip, group in sorted(by_ip.items()):
            clients.append(
                ElastiCacheClient(
                    node=node,
                    ip=ip,
                    connections=len(group),
                    names=sorted({c.name for c in group if c.name}),
                    last_commands=sorted({c.last_command for c in group if c.last_command}),
                    max_idle_seconds=max(c.idle_seconds for c in group),
                    origin=_origin_label(interfaces.get(ip)),
                )
            )
    return ClientListOutput(
        clients=clients,
        lines=[f"{client.describe()} is still connected" for client in clients],
        left_out=left_out,
    )
