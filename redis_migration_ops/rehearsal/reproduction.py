"""What a rehearsal of a described account could not reproduce, and its messages in the file's names.

A rehearsal runs the real workflow on a local copy of the account, but some of what the file
describes has no local counterpart: the ElastiCache stand-in is this machine's ``redis-server``
whatever engine and version the file names, one non-cluster server whatever its cluster mode, with
no Global Datastore, SSD tier or RBAC users behind it; the sandbox host runs this machine's OS.
The workflow still *decides* as it would on AWS (the engine answers DescribeReplicationGroups and
DescribeCacheClusters with the file's values, and the preflight reads those), but what then *ran*
differs; :func:`ran_differently` says what, one line each, for the report.

The workflow's messages name local resources (moto's subnet, group, key and secret ids);
:func:`in_file_terms` puts the file's names back (its recorded ids, else the names it uses), so a
refusal reads as it would on the account the file describes.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from redis_migration_ops.account.description import AccountDescription
from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from redis_migration_ops.rehearsal.local_account import LocalAccount

OS_RELEASE = Path("/etc/os-release")


def this_machines_os(os_release: Path = OS_RELEASE) -> str:
    """This machine's OS as os-release names it (what the sandbox host runs)."""
    with contextlib.suppress(OSError):
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "this machine's OS"


def stand_in_release(stand_in: ElastiCacheEndpoint | None) -> str | None:
    """``redis <version>`` (or ``valkey <version>``) of the server behind the stand-in."""
    if stand_in is None:
        return None
    with contextlib.closing(stand_in.admin_client()) as client:
        info = client.info("server")
    if info.get("valkey_version"):
        return f"valkey {info['valkey_version']}"
    return f"redis {info.get('redis_version', '?')}"


def _same_release(described: str, running: str) -> bool:
    """``redis 7.0`` and ``redis 7.0.15`` are the same release; ``valkey 8.0`` and ``redis 7.0`` not."""
    engine, _, version = described.partition(" ")
    other_engine, _, other_version = running.partition(" ")
    return engine == other_engine and other_version.startswith(version)


def ran_differently(
    description: AccountDescription,
    account: LocalAccount,
    running: str | None,
    *,
    machine_os: str | None = None,
) -> list[str]:
    """What the rehearsal ran differently from the account the file describes, one line each;
    ``running``: the stand-in's server (:func:`stand_in_release`), ``machine_os`` the sandbox's."""
    lines = list(account.not_reproduced)
    cache = description.elasticache
    group = f"ElastiCache {cache.replication_group_id}"
    if cache.replication_group_id and running is not None:
        described = f"{cache.engine} {cache.engine_version}" if cache.engine_version else cache.engine
        if not _same_release(described, running):
            lines.append(
                f"{group} runs {described}; the stand-in behind its endpoint is this machine's "
                f"{running}. The workflow read {described} from DescribeReplicationGroups "
                "and DescribeCacheClusters, as on AWS, and judged the copy by that release's RDB version"
            )
    if cache.replication_group_id and cache.cluster_mode != "disabled":
        lines.append(
            f"{group} has ClusterMode {cache.cluster_mode} ({cache.shard_count} shard(s)); the stand-in "
            "is one non-cluster server. The preflight read the ClusterMode from DescribeReplicationGroups, "
            "as on AWS"
        )
    if cache.global_datastore is not None:
        lines.append(
            f"{group} is the {cache.global_datastore.role} of Global Datastore "
            f"{cache.global_datastore.id}; no other Region exists locally (DescribeReplicationGroups says so)"
        )
    if cache.data_tiering:
        lines.append(f"{group} uses data tiering; the stand-in keeps every key in memory")
    if cache.user_groups:
        lines.append(
            f"{group} has RBAC user groups {', '.join(cache.user_groups)}; the stand-in has no such users"
        )
    if cache.transit_encryption_mode == "preferred":
        lines.append(
            f"{group} accepts TLS and plaintext (TransitEncryptionMode "
            "preferred); the stand-in speaks TLS only"
        )
    platform = description.instance.platform
    # SSM's platform (what the preflight decides on) when the file has it, else the AMI's name.
    os_name = f"{platform.name} {platform.version}".strip() if platform else description.instance.os_name
    machine = machine_os or this_machines_os()
    if os_name and os_name.lower() not in machine.lower():
        lines.append(
            f"the instance runs {os_name}; the sandbox host that stood for it runs {machine}, so the install "
            "ran on that OS's packages"
        )
    return lines


def file_names(description: AccountDescription, account: LocalAccount) -> dict[str, str]:
    """Local id or ARN -> what the file calls it (its recorded id or ARN, else its name)."""
    names: dict[str, str] = {}
    for subnet in description.vpc.subnets:
        local = account.subnets.get(subnet.name)
        if local:
            names[local] = subnet.id or subnet.name
    for group in description.security_groups:
        local = account.security_groups.get(group.name)
        if local:
            names[local] = group.id or group.name
    for described, local in account.kms_keys.items():
        names[local] = described
    for described, local in account.arn_rewrites.items():
        names[local] = described
    for secret in description.secrets:
        local = account.secrets.get(secret.name)
        if local and local not in names:
            names[local] = secret.arn or secret.name
    if account.vpc_id:
        names[account.vpc_id] = description.vpc.id or description.vpc.name or account.vpc_id
    if account.instance_id and description.instance.id:
        names[account.instance_id] = description.instance.id
    return {local: named for local, named in names.items() if local and local != named}


def in_file_terms(text: str | None, names: dict[str, str]) -> str | None:
    """``text`` with every local id or ARN replaced by the file's name for it (longest first, whole
    tokens only: ``subnet-0a`` inside ``subnet-0ab`` stays)."""
    if not text or not names:
        return text
    pattern = re.compile(
        "|".join(rf"(?<![\w-]){re.escape(local)}(?![\w-])" for local in sorted(names, key=len, reverse=True))
    )
    return pattern.sub(lambda match: names[match.group(0)], text)
