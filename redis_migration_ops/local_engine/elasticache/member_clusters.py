"""A replication group's nodes are cache clusters, as ElastiCache answers them (moto 5.2.5 forgets).

What AWS does (ElastiCache API reference, CreateReplicationGroup, DescribeCacheClusters,
DescribeReplicationGroups):
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateReplicationGroup.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DescribeCacheClusters.html

- ``NumCacheClusters`` (cluster mode disabled) is the number of nodes: a primary and N-1 replicas,
  each a member cluster ``<id>-001``, ``<id>-002`` ...;
- every node is a cache cluster that DescribeCacheClusters lists with what the replication group
  itself does not answer: ``CacheSubnetGroupName``, ``CacheParameterGroup`` (``default.<engine><major>``
  when none was given, ``.cluster.on`` with cluster mode), ``SecurityGroups``;
- an endpoint's name is ElastiCache's: ``<id>.<hash>.<region>.cache.amazonaws.com``, where the
  hash is the same for every group of an account in a region (a group created again under the same
  id has the same names).

- a cluster-mode-disabled group's node group answers its ``ReaderEndpoint`` beside its
  ``PrimaryEndpoint`` (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_NodeGroup.html);
- DescribeCacheClusters answers each node of a cluster (``CacheNodes``, with its ``Endpoint``) only
  when asked with ``ShowCacheNodeInfo`` ("An optional flag that can be included in the
  DescribeCacheCluster request to retrieve information about the individual cache nodes").

Wrong in moto, filled here: ``NumCacheClusters`` is ignored (one node unless
``ReplicasPerNodeGroup``); no member cluster exists for DescribeCacheClusters; the endpoint's hash is
random for every group (here: derived from the account and region); the reader endpoint is not
answered; no cluster answers its nodes.
:meth:`LocalEngine.name_elasticache_endpoint` gives a group the endpoints a described account recorded
(the names its clients use: primary, reader, each node), so a rehearsal's group serves the names
its functions hold.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

from moto.core.responses import PaginatedResult
from moto.elasticache.models import CacheCluster, ElastiCacheBackend, ReplicationGroup, elasticache_backends
from moto.elasticache.responses import ElastiCacheResponse

from redis_migration_ops.local_engine.moto_patch import MotoPatch


def default_parameter_group(engine: str, version: str | None, cluster_mode: str) -> str:
    """The default parameter group ElastiCache assigns (``default.redis7``, "
    "``default.valkey8.cluster.on``)."""
    major = (version or "7").split(".")[0]
    return f"default.{engine}{major}" + (".cluster.on" if cluster_mode == "enabled" else "")


def _account_hash(backend: ElastiCacheBackend) -> str:
    return hashlib.sha256(f"{backend.account_id}/{backend.region_name}".encode()).hexdigest()[:6]


def _stable_names(backend: ElastiCacheBackend, group: ReplicationGroup) -> None:
    """Replace moto's random hash in every endpoint address by the account's."""
    marker = f"{group.replication_group_id}."

    def fixed(address: str) -> str:
        head, found, tail = address.partition(marker)
        if not found:
            return address
        _, _, rest = tail.partition(".")
        return f"{head}{marker}{_account_hash(backend)}.{rest}"

    for node_group in group.node_groups:
        for key in ("primary_endpoint_address", "reader_endpoint_address"):
            if key in node_group:
                node_group[key] = fixed(str(node_group[key]))
        if "primary_endpoint" in node_group:
            node_group["primary_endpoint"]["address"] = node_group["primary_endpoint_address"]
        if "reader_endpoint_address" in node_group:
            # What DescribeReplicationGroups answers as ReaderEndpoint (moto keeps the address only).
            node_group["reader_endpoint"] = {
                "address": node_group["reader_endpoint_address"],
                "port": node_group.get("port", group.port),
            }
        for member in node_group.get("node_group_members", []):
            if "read_endpoint" in member:
                member["read_endpoint"]["address"] = fixed(str(member["read_endpoint"]["address"]))
    configuration = getattr(group, "configuration_endpoint", None)
    if configuration:
        configuration["address"] = fixed(str(configuration["address"]))


def _fix_node_count(group: ReplicationGroup, num_cache_clusters: int | None) -> None:
    if (
        group.cluster_mode == "enabled"
        or not num_cache_clusters
        or len(group.member_clusters) >= num_cache_clusters
    ):
        return
    node_group = group.node_groups[0]
    domain = str(node_group["primary_endpoint_address"]).removeprefix("master.")
    node_group["node_group_members"] = []
    group.member_clusters.clear()
    group._set_node_members_clusters_disabled(
        member_clusters=group.member_clusters,
        replication_group_id=group.replication_group_id,
        replication_group_domain=domain,
        node_group=node_group,
        preferred_cache_cluster_azs=[],
        num_cache_clusters=num_cache_clusters,
        replicas_per_node_group=num_cache_clusters - 1,
    )


def _add_member_clusters(backend: ElastiCacheBackend, group: ReplicationGroup) -> None:
    parameter_group = group.cache_parameter_group_name or default_parameter_group(
        group.engine, group.engine_version, group.cluster_mode
    )
    for cluster_id in group.member_clusters:
        cluster = CacheCluster(
            account_id=backend.account_id,
            region_name=backend.region_name,
            cache_cluster_id=cluster_id,
            cache_node_type=group.cache_node_type,
            replication_group_id=group.replication_group_id,
            az_mode=None,
            preferred_availability_zone=None,
            num_cache_nodes=1,
            engine=group.engine,
            engine_version=group.engine_version,
            cache_parameter_group_name=parameter_group,
            cache_subnet_group_name=group.cache_subnet_group_name,
            transit_encryption_enabled=group.transit_encryption_enabled,
            network_type=group.network_type,
            ip_discovery=group.ip_discovery,
            snapshot_name=None,
            preferred_maintenance_window=group.preferred_maintenance_window,
            port=group.port,
            notification_topic_arn=None,
            auto_minor_version_upgrade=group.auto_minor_version_upgrade,
            snapshot_retention_limit=group.snapshot_retention_limit,
            snapshot_window=group.snapshot_window,
            auth_token="set" if group.auth_token_enabled else None,
            outpost_mode=None,
            preferred_outpost_arn=None,
            preferred_availability_zones=None,
            cache_security_group_names=None,
            security_group_ids=list(group.security_group_ids or []),
            tags=None,
            snapshot_arns=None,
            preferred_outpost_arns=None,
            log_delivery_configurations=[],
            cache_node_ids_to_remove=None,
            cache_node_ids_to_reboot=None,
        )
        # The shape DescribeCacheClusters answers (moto keeps ids only).
        answered: dict[str, Any] = {
            "replication_group_id": group.replication_group_id,
            "cache_parameter_group": {
                "CacheParameterGroupName": parameter_group,
                "ParameterApplyStatus": "in-sync",
            },
            "security_groups": [
                {"SecurityGroupId": group_id, "Status": "active"}
                for group_id in group.security_group_ids or []
            ],
            "at_rest_encryption_enabled": group.at_rest_encryption_enabled,
        }
        for attribute, value in answered.items():
            setattr(cluster, attribute, value)
        backend.cache_clusters[cluster_id] = cluster
    group.cache_parameter_group_name = parameter_group


def name_endpoint(
    account_id: str,
    region: str,
    replication_group_id: str,
    address: str,
    *,
    reader: str | None = None,
    nodes: Sequence[str] = (),
) -> None:
    """Make ``address`` the group's primary endpoint (its configuration endpoint with cluster mode),
    ``reader`` its reader endpoint and ``nodes`` its nodes' endpoints, in member order."""
    group = elasticache_backends[account_id][region].replication_groups[replication_group_id]
    if group.cluster_mode == "enabled":
        group.configuration_endpoint["address"] = address
    else:
        for node_group in group.node_groups:
            node_group["primary_endpoint_address"] = address
            node_group["primary_endpoint"]["address"] = address
            if reader:
                node_group["reader_endpoint_address"] = reader
                node_group.setdefault("reader_endpoint", {"port": group.port})["address"] = reader
    members = [
        member for node_group in group.node_groups for member in node_group.get("node_group_members", [])
    ]
    for member, node in zip(members, nodes, strict=False):
        member.setdefault("read_endpoint", {"port": group.port})["address"] = node


def _cache_nodes(backend: ElastiCacheBackend, cluster: CacheCluster) -> list[dict[str, Any]]:
    """A member cluster's node as DescribeCacheClusters answers it with ShowCacheNodeInfo: its
    endpoint is the one the replication group reports for that member."""
    group = backend.replication_groups.get(str(getattr(cluster, "replication_group_id", "") or ""))
    if group is None:
        return []
    return [
        {
            "cache_node_id": member.get("cache_node_id", "0001"),
            "cache_node_status": "available",
            "endpoint": dict(member["read_endpoint"]),
            "customer_availability_zone": member.get("preferred_availability_zone"),
        }
        for node_group in group.node_groups
        for member in node_group.get("node_group_members", [])
        if member.get("cache_cluster_id") == cluster.cache_cluster_id and "read_endpoint" in member
    ]


class ElastiCacheMemberClusters(MotoPatch):
    """Gap and fill: see the module docstring."""

    def install(self) -> None:
        original = ElastiCacheBackend.create_replication_group

        def create_replication_group(backend: ElastiCacheBackend, *args: Any, **kwargs: Any) -> Any:
            group = original(backend, *args, **kwargs)
            _fix_node_count(group, kwargs.get("num_cache_clusters"))
            _stable_names(backend, group)
            _add_member_clusters(backend, group)
            return group

        self._replace(ElastiCacheBackend, "create_replication_group", create_replication_group)

        def describe_cache_clusters(response: ElastiCacheResponse) -> Any:
            shown = str(response._get_param("ShowCacheNodeInfo", "false")).lower() == "true"
            backend = response.elasticache_backend
            answered = []
            for cluster in backend.describe_cache_clusters(
                cache_cluster_id=response._get_param("CacheClusterId")
            ):
                # A copy per answer (Map iterations describe at once): nodes only when asked for.
                view = copy.copy(cluster)
                vars(view)["cache_nodes"] = _cache_nodes(backend, cluster) if shown else None
                answered.append(view)
            return PaginatedResult({"CacheClusters": answered})

        self._replace(ElastiCacheResponse, "describe_cache_clusters", describe_cache_clusters)
