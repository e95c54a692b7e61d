"""Every name of the stack's ElastiCache, read before anything changes.

Clients name a replication group by any of its endpoints: the primary (what the stack's
``ElastiCacheEndpoint`` usually holds), the reader, each node, or the configuration endpoint
(ElastiCache, "Finding connection endpoints",
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Endpoints.html). The group is the one the
stack names (``ElastiCacheReplicationGroupId``), or else the group whose endpoints include the
configured endpoint; its endpoints come from DescribeReplicationGroups (``NodeGroups``:
``PrimaryEndpoint``, ``ReaderEndpoint``, ``NodeGroupMembers[].ReadEndpoint``;
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_NodeGroup.html) and each
member cluster's nodes from DescribeCacheClusters with ``ShowCacheNodeInfo``
(``CacheNodes[].Endpoint``; without the flag no node is answered:
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DescribeCacheClusters.html).

When no group can be found the configured endpoint is the only name, and the plan says so: a
client that names a reader or a node would then not be seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis_migration.aws import AwsClients, error_code
from redis_migration.clients.endpoints import CacheNames, endpoint_addresses, normalized_host

GROUP_NOT_FOUND = frozenset({"ReplicationGroupNotFoundFault", "ReplicationGroupNotFound"})
CLUSTER_NOT_FOUND = frozenset({"CacheClusterNotFound", "CacheClusterNotFoundFault"})
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class CacheLookup:
    """The cache's names, the group they were read from, and what the plan must say about them."""

    names: CacheNames
    replication_group_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def split_endpoint(endpoint: str) -> tuple[str, int | None]:
    """``host[:port]`` -> (host, port or None)."""
    host, _, port = endpoint.strip().partition(":")
    return host, int(port) if port.isdigit() else None


def read_cache_names(endpoint: str, replication_group_id: str, aws: AwsClients) -> CacheLookup:
    """The names of the ElastiCache behind ``endpoint`` (the stack's group when it names one)."""
    host, configured_port = split_endpoint(endpoint)
    fallback = CacheNames.of([host], configured_port or DEFAULT_PORT)
    if replication_group_id:
        group = describe_group(replication_group_id, aws)
        if group is None:
            return CacheLookup(
                fallback,
                warnings=[
                    f"ElastiCache: the stack's replication group {replication_group_id} "
                    "(ElastiCacheReplicationGroupId) does not exist; a function is found only by "
                    f"{host} itself, not by a reader or node endpoint"
                ],
            )
        if normalized_host(host) not in endpoint_addresses(group):
            return CacheLookup(
                fallback,
                problems=[
                    f"ElastiCacheReplicationGroupId: replication group {replication_group_id} does not "
                    f"serve {host} (its endpoints: {', '.join(endpoint_addresses(group)) or 'none'}); the "
                    "stack names the wrong group, and its clients would be switched instead of these"
                ],
            )
    else:
        group = group_serving(host, aws)
        if group is None:
            return CacheLookup(
                fallback,
                warnings=[
                    f"ElastiCache: no replication group serves {host}; a function is found only by that "
                    "name, not by a reader or node endpoint (name the group in the stack parameter "
                    "ElastiCacheReplicationGroupId)"
                ],
            )
    addresses = [*endpoint_addresses(group), *node_endpoints(group, aws), host]
    return CacheLookup(
        CacheNames.of(addresses, group_port(group) or configured_port or DEFAULT_PORT),
        replication_group_id=str(group.get("ReplicationGroupId")),
    )


def describe_group(replication_group_id: str, aws: AwsClients) -> dict[str, Any] | None:
    """The replication group as DescribeReplicationGroups answers, or None when it does not exist."""
    try:
        found = aws.elasticache.describe_replication_groups(ReplicationGroupId=replication_group_id)
    except Exception as error:
        if error_code(error) in GROUP_NOT_FOUND:
            return None
        raise
    groups = found.get("ReplicationGroups") or []
    return dict(groups[0]) if groups else None


def group_serving(host: str, aws: AwsClients) -> dict[str, Any] | None:
    """The replication group one of whose endpoints is ``host`` (any spelling), or None."""
    wanted = normalized_host(host)
    paginator = aws.elasticache.get_paginator("describe_replication_groups")
    for page in paginator.paginate():
        for group in page.get("ReplicationGroups") or []:
            if wanted in endpoint_addresses(group):
                return dict(group)
    return None


def node_endpoints(group: dict[str, Any], aws: AwsClients) -> list[str]:
    """Every node's endpoint, from each member cluster (DescribeCacheClusters, ShowCacheNodeInfo)."""
    addresses: list[str] = []
    for member in group.get("MemberClusters") or []:
        try:
            clusters = aws.elasticache.describe_cache_clusters(
                CacheClusterId=str(member), ShowCacheNodeInfo=True
            )["CacheClusters"]
        except Exception as error:
            if error_code(error) in CLUSTER_NOT_FOUND:
                continue  # removed since the group was described
            raise
        addresses += [
            str((node.get("Endpoint") or {}).get("Address", ""))
            for cluster in clusters
            for node in cluster.get("CacheNodes") or []
        ]
    return [address for address in addresses if address]


def group_port(group: dict[str, Any]) -> int | None:
    """The port the group's clients use (its configuration or primary endpoint's)."""
    endpoints = [group.get("ConfigurationEndpoint")]
    endpoints += [node_group.get("PrimaryEndpoint") for node_group in group.get("NodeGroups") or []]
    for endpoint in endpoints:
        if isinstance(endpoint, dict) and endpoint.get("Port"):
            return int(endpoint["Port"])
    return None
