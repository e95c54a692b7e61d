"""ListElastiCacheClients: who is connected to ElastiCache, by CLIENT LIST on every node.

Runs inside the VPC (the function has the stack's VPC configuration) through
:class:`~redis_migration.data.link.RedisLink`: TLS with the default trust store when the group has
in-transit encryption, the AUTH token read from its secret here (it never travels). Each address is
named by :mod:`redis_migration.clients.connected` from the account's network interfaces: a Lambda
interface (by its subnet and security groups: the functions attached with exactly those share it),
an instance, a task ... . The function calls only Secrets Manager and EC2 from the VPC, the two
services the stack's network preflight makes sure it can reach (``preflight_network.IN_VPC_CALLS``).

Left out, and counted: our own connection (by its CLIENT ID, never by its name), the replication
links between the nodes, and ElastiCache's own monitoring connections
(:func:`~redis_migration.clients.connected.elasticache_own`). Everything else is a client, named
with its node, address, last commands and idle time; the migration compares them with its plan
(:mod:`redis_migration.clients.writers`), the decommission refuses while one is there.
"""

from __future__ import annotations

from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.clients.connected import (
    MAX_LISTED_CLIENTS,
    ClientCheck,
    ClientListOutput,
    ElastiCacheClient,
    RedisConnection,
    elasticache_own,
    find_interfaces,
    list_connections,
    origin_of,
)
from redis_migration.data.link import RedisEndpoint, RedisLink, read_credentials


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


def _client(
    node: str, ip: str, group: list[RedisConnection], interface: dict[str, Any] | None
) -> ElastiCacheClient:
    origin = origin_of(interface, {})
    return ElastiCacheClient(
        node=node,
        ip=ip,
        connections=len(group),
        names=sorted({c.name for c in group if c.name}),
        last_commands=sorted({c.last_command for c in group if c.last_command}),
        max_idle_seconds=max(c.idle_seconds for c in group),
        min_idle_seconds=min(c.idle_seconds for c in group),
        origin=_origin_label(interface),
        kind=origin.kind,
        interface_id=origin.interface_id,
        subnet_id=origin.subnet_id,
        security_group_ids=origin.security_group_ids,
        instance_id=origin.instance_id,
    )


def list_elasticache_clients(given: ClientCheck, aws: AwsClients) -> ClientListOutput:
    """Every client of every node, each named; ours, the replication links and ElastiCache's own
    monitoring left out and counted."""
    clients: list[ElastiCacheClient] = []
    left_out = own = 0
    for node in given.nodes:
        endpoint = RedisEndpoint(host=node, port=given.port, tls=given.tls, secret_arn=given.secret_arn)
        with RedisLink(endpoint, read_credentials(endpoint, aws)) as link:
            connections = list_connections(link)
        left_out += 1  # this function's own connection, left out by its CLIENT ID
        # What the address alone shows to be ElastiCache's own needs no look-up.
        others = [c for c in connections if elasticache_own(c, None) is None]
        with aws_errors_as_transient():
            interfaces = find_interfaces(aws.ec2, (c.ip for c in others))
        by_ip: dict[str, list[RedisConnection]] = {}
        for connection in others:
            if elasticache_own(connection, interfaces.get(connection.ip)) is None:
                by_ip.setdefault(connection.ip, []).append(connection)
        node_own = len(connections) - sum(len(group) for group in by_ip.values())
        own += node_own
        left_out += node_own
        clients += [_client(node, ip, group, interfaces.get(ip)) for ip, group in sorted(by_ip.items())]
    listed = clients[:MAX_LISTED_CLIENTS]
    return ClientListOutput(
        clients=listed,
        lines=[f"{client.describe()} is still connected" for client in listed],
        left_out=left_out,
        elasticache_connections=own,
        nodes=list(given.nodes),
        more_clients=len(clients) - len(listed),
    )
