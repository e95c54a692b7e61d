"""The ElastiCache source's settings, read from the API before anything changes, and what they forbid.

The endpoint the functions name is matched to its replication group (DescribeReplicationGroups,
every endpoint the group reports; failing that, the group id ElastiCache puts in its endpoint
names), and the group's engine version is read from one of its member clusters
(DescribeCacheClusters: the ReplicationGroup shape carries ``Engine`` but no version).
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_ReplicationGroup.html
https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CacheCluster.html

What the settings decide (:func:`source_group_problems`), each named with the API's field:

- ``ClusterMode`` ``enabled`` (or ``ClusterEnabled``) or ``compatible``: refused, whatever the data
  mode, even for an empty cache. The keys are spread over shards one SCAN does not cover, and the
  clients speak the cluster protocol (a ``REDIS_CLUSTER=true``-style setting the cutover does not
  manage): one self-hosted Redis would answer them with MOVED errors or not at all.
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Replication.Redis-RedisCluster.html
- ``GlobalReplicationGroupInfo``: a Global Datastore member is refused. A primary replicates its
  writes to other Regions, which would stop receiving them; a secondary is read-only, its data the
  primary Region's. Remove the group from the Global Datastore first.
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Redis-Global-Datastore.html
- ``DataTiering`` ``enabled``: refused. Data tiering keeps the less used keys on SSD (r6gd nodes):
  ``used_memory`` does not measure the dataset, the copy would read every tiered key back from SSD
  into a node's memory, and the self-hosted Redis would need RAM for all of it.
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/data-tiering.html
- ``UserGroupIds`` (role-based access control): refused. The clients log in as ElastiCache users the
  self-hosted Redis does not have (it gets one default user with a new password), and ElastiCache
  never returns a user's password to recreate them.
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/Clusters.RBAC.html
- ``AuthTokenEnabled`` with no secret known to hold the token, when the data is read: refused,
  naming ``sourceSecretArn`` (and the stack parameter ``ElastiCacheAuthTokenSecretName``), instead
  of connecting without a token and failing on "Connection reset by peer" after the retries.
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html
- ``TransitEncryptionEnabled``/``TransitEncryptionMode``: the data steps use TLS when the group
  has in-transit encryption (``required``: only TLS is accepted; ``preferred``: both). A
  ``sourceTls: false`` against a group that requires TLS is refused, naming the field.
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/in-transit-encryption.html
"""

from __future__ import annotations

from typing import Any

from redis_migration.aws import AwsClients, error_code
from redis_migration.models import ElastiCacheSourceFacts


def endpoint_host(endpoint: str) -> str:
    """The host of an endpoint value (``host``, ``host:port``, a trailing dot), lower case."""
    return endpoint.split(":", 1)[0].strip().rstrip(".").lower()


def _addresses(group: dict[str, Any]) -> dict[str, str]:
    """Every address the group reports -> which endpoint it is."""
    found: dict[str, str] = {}
    for node_group in group.get("NodeGroups") or []:
        for member in node_group.get("NodeGroupMembers") or []:
            address = (member.get("ReadEndpoint") or {}).get("Address")
            if address:
                found[str(address).lower()] = "node"
        reader = (node_group.get("ReaderEndpoint") or {}).get("Address")
        if reader:
            found[str(reader).lower()] = "reader"
        primary = (node_group.get("PrimaryEndpoint") or {}).get("Address")
        if primary:
            found[str(primary).lower()] = "primary"
    configuration = (group.get("ConfigurationEndpoint") or {}).get("Address")
    if configuration:
        found[str(configuration).lower()] = "configuration"
    return found


def _ids_in_host(host: str) -> set[str]:
    """Group ids ElastiCache puts in endpoint names (``master.<id>.``, ``<id>.``, ``<id>-001.``)."""
    labels = host.split(".")
    first = labels[1] if labels[0] in {"master", "replica", "clustercfg"} and len(labels) > 1 else labels[0]
    ids = {first}
    stem, _, suffix = first.rpartition("-")
    if stem and suffix.isdigit():
        ids.add(stem)
    return ids


def find_replication_group(endpoint: str, aws: AwsClients) -> tuple[dict[str, Any], str] | None:
    """The replication group behind ``endpoint`` and which of its endpoints it is (None: none)."""
    host = endpoint_host(endpoint)
    paginator = aws.elasticache.get_paginator("describe_replication_groups")
    groups = [dict(group) for page in paginator.paginate() for group in page.get("ReplicationGroups", [])]
    for group in groups:
        kind = _addresses(group).get(host)
        if kind is not None:
            return group, kind
    ids = _ids_in_host(host)
    for group in groups:
        if group.get("ReplicationGroupId") in ids:
            return group, "by-id"
    return None


def _engine_version(group: dict[str, Any], aws: AwsClients) -> str:
    members = list(group.get("MemberClusters") or [])
    if not members:
        return ""
    try:
        clusters = aws.elasticache.describe_cache_clusters(CacheClusterId=members[0])["CacheClusters"]
    except Exception as error:
        if error_code(error) == "CacheClusterNotFound":
            return ""
        raise
    return str(clusters[0].get("EngineVersion") or "") if clusters else ""


def read_source_group(endpoint: str, aws: AwsClients) -> ElastiCacheSourceFacts | None:
    """The source's replication group settings (None: no group behind the endpoint)."""
    found = find_replication_group(endpoint, aws)
    if found is None:
        return None
    group, kind = found
    cluster_mode = str(group.get("ClusterMode") or ("enabled" if group.get("ClusterEnabled") else "disabled"))
    global_info = group.get("GlobalReplicationGroupInfo") or {}
    return ElastiCacheSourceFacts(
        replication_group_id=str(group["ReplicationGroupId"]),
        endpoint_kind=kind,
        engine=str(group.get("Engine") or "redis"),
        engine_version=_engine_version(group, aws),
        cluster_mode=cluster_mode,
        transit_encryption=bool(group.get("TransitEncryptionEnabled")),
        transit_encryption_mode=group.get("TransitEncryptionMode") or None,
        auth_token_enabled=bool(group.get("AuthTokenEnabled")),
        user_group_ids=[str(item) for item in group.get("UserGroupIds") or []],
        global_datastore=global_info.get("GlobalReplicationGroupId") or None,
        global_datastore_role=(str(global_info["GlobalReplicationGroupMemberRole"]).lower() or None)
        if global_info.get("GlobalReplicationGroupMemberRole")
        else None,
        data_tiering=str(group.get("DataTiering") or "").lower() == "enabled",
        node_type=group.get("CacheNodeType") or None,
    )


def source_tls(group: ElastiCacheSourceFacts | None, requested: bool | None, secret_known: bool) -> bool:
    """Whether the data steps speak TLS to the source: ``sourceTls`` when given, else the group's
    in-transit encryption; without a group, as before (a token implies TLS)."""
    if requested is not None:
        return requested
    return group.transit_encryption if group is not None else secret_known


def source_group_problems(
    group: ElastiCacheSourceFacts,
    *,
    data_read: bool,
    secret_known: bool,
    requested_tls: bool | None,
    token_secret_parameter: str,
) -> list[str]:
    """Why this source cannot be migrated as asked (see the module doc); empty: it can.
    ``data_read``: the run reads ElastiCache's data (dataCopy is not ``none``)."""
    name = f"ElastiCache replication group {group.replication_group_id}"
    problems: list[str] = []
    if group.cluster_mode in ("enabled", "compatible"):
        problems.append(
            f"{name} has ClusterMode {group.cluster_mode}: its keys are spread over shards and its clients "
            "speak the cluster protocol (a REDIS_CLUSTER-style setting the cutover does not change); one "
            "self-hosted Redis is not a cluster. Cluster-mode sources are not supported"
        )
    if group.global_datastore:
        role = group.global_datastore_role or "member"
        consequence = (
            "its writes replicate to the Global Datastore's other Regions, which would stop receiving them"
            if role == "primary"
            else "it is read-only, its data the primary Region's"
        )
        problems.append(
            f"{name} is the {role} of Global Datastore {group.global_datastore} "
            f"(GlobalReplicationGroupInfo): {consequence}. Remove it from the Global Datastore first"
        )
    if group.data_tiering:
        problems.append(
            f"{name} uses data tiering (DataTiering enabled, node type {group.node_type or 'r6gd'}): part of "
            "its data lives on SSD, so used_memory does not measure it, the copy would read every tiered "
            "key back into memory, and the self-hosted Redis would need RAM for all of it. Not supported"
        )
    if group.user_group_ids:
        problems.append(
            f"{name} authenticates clients as RBAC users (UserGroupIds {', '.join(group.user_group_ids)}): "
            "the self-hosted Redis gets one default user with a new password, and ElastiCache never returns "
            "a user's password to recreate the users. Not supported"
        )
    if data_read and group.auth_token_enabled and not secret_known:
        problems.append(
            f"sourceSecretArn: {name} demands an AUTH token (AuthTokenEnabled) and no secret holding it is "
            "known (no function names one in a *_SECRET_ARN variable): give sourceSecretArn, with the stack "
            f"parameter ElastiCacheAuthTokenSecretName set to that secret's name (now "
            f'{token_secret_parameter or "empty"}), or start with "dataCopy": "none"'
        )
    required = group.transit_encryption and group.transit_encryption_mode != "preferred"
    if data_read and requested_tls is False and required:
        problems.append(
            f"sourceTls: false, but {name} accepts only TLS (TransitEncryptionEnabled, TransitEncryptionMode "
            f"{group.transit_encryption_mode or 'required'}): leave sourceTls out"
        )
    if data_read and requested_tls is True and not group.transit_encryption:
        problems.append(
            f"sourceTls: true, but {name} has no in-transit encryption (TransitEncryptionEnabled false)"
        )
    return problems


__all__ = [
    "endpoint_host",
    "find_replication_group",
    "read_source_group",
    "source_group_problems",
    "source_tls",
]
