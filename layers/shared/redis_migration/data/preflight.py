"""Before copying: can the target hold the source's data, and read it? Named refusals and warnings.

The reads (:func:`read_source_facts`, :func:`read_target_facts`) use INFO, RANDOMKEY, DUMP and
MEMORY USAGE on the source (read-only; nothing ElastiCache restricts), and on the target also a
probe key (SET with a 60 s expiry, DUMP, DEL) to learn the RDB version it writes. The source's
RDB version comes from the DUMP of a *small* sampled key (its size read first): a DUMP of a
multi-megabyte key would hold the production primary, and could exceed the function's memory.
The rules are pure functions of those facts (:func:`evaluate`), each answering a
:class:`DataFinding` with a stable ``code`` the plan, the report and the tests refer to:

Refusals (the copy would lose or refuse data):

- ``DumpVersionUnsupported``: the source's DUMP payloads carry a newer RDB version than the target
  reads. RESTORE checks the two bytes before the payload's 8-byte CRC against its own version and
  refuses a newer one (Redis 7.0 reads <= 10, 7.2 <= 11, 7.4 and 8.0 <= 12, Valkey 7.2 and 8 <= 11).
- ``ReverseCopyUnsupported`` (only when a rollback must copy back, ``consistent`` mode): the
  target writes a newer RDB version than ElastiCache reads, so writes made after the cutover could
  not go back.
- ``DataDoesNotFit``: the source's dataset is above ``refuse_fill`` (90 %) of the target's
  maxmemory. With an ``allkeys-*`` or ``volatile-*`` policy the target would evict keys silently
  while the copy writes them; with ``noeviction`` the copy would fail half-way.
- ``KeyTooLarge``: a sampled key's size is above what RESTORE accepts in one argument
  (``proto-max-bulk-len``, 512 MB by default), or above what the copy function can hold
  (:func:`~redis_migration.data.copy.max_key_bytes_for` its memory): each is named with its size.
  (The copy checks every key's size again before its DUMP: a key the sample missed is refused by
  name there, never an out-of-memory kill.)
- ``SourceIsReplica``: the source answers ``role:slave`` (a replica's node endpoint or the reader
  endpoint): its data lags the primary's.
- ``ClusterModeSource``: the source is a Redis Cluster (cluster mode enabled): one SCAN sees one
  shard; its keys would be missed.
- ``DatabaseOutOfRange``: the source uses a database number the target does not have.

Warnings (the plan shows them; the run goes on):

- ``DataFillHigh``: the dataset is above ``warn_fill`` (75 %) of the target's maxmemory.
- ``NoMaxmemory``: the target has no maxmemory; the instance's RAM is the only limit.
- ``BigKeys``: sampled keys above ``big_key_bytes`` (16 MiB); each is copied on its own.
- ``EvictionPolicyDiffers``: the policies differ in a way that changes which keys may be dropped
  (e.g. ``volatile-lru`` on ElastiCache, ``allkeys-lru`` on the target: keys without a TTL become
  evictable).
- ``DumpVersionUnknown``: a version could not be read (an empty source, an unknown server).
- ``SourceVersionDiffers``: ElastiCache describes the group with an engine and version whose RDB
  version is not the one its server's DUMP carries; the rules take the newer (on AWS the two agree;
  a rehearsal's stand-in runs this machine's redis-server whatever the account's engine, and this
  is how the rehearsal still decides as AWS would).
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from pydantic import Field
from redis.exceptions import ResponseError

from redis_migration.data.compare import key_label
from redis_migration.data.copy import keyspace, max_key_bytes_for, server_identity
from redis_migration.data.link import RedisLink
from redis_migration.models import ElastiCacheSourceFacts, Model

REFUSE_FILL = 0.9
WARN_FILL = 0.75
BIG_KEY_BYTES = 16 * 1024 * 1024
MAX_RESTORE_BYTES = 512 * 1024 * 1024
BIG_KEY_SAMPLES = 1_000
MAX_BIG_KEYS_NAMED = 10
# The largest sampled key whose DUMP may tell the source's RDB version (its size is read first).
VERSION_PROBE_MAX_BYTES = 64 * 1024
PROBE_KEY_PREFIX = "redis-migration:rdb-probe:"

# The RDB version each release writes (and the newest it reads), for a server we cannot DUMP on.
KNOWN_RDB_VERSIONS: dict[tuple[str, int, int], int] = {
    ("redis", 6, 0): 9,
    ("redis", 6, 2): 9,
    ("redis", 7, 0): 10,
    ("redis", 7, 1): 10,  # ElastiCache 7.1 runs the 7.0 format (it does not publish its version)
    ("redis", 7, 2): 11,
    ("redis", 7, 4): 12,
    ("redis", 8, 0): 12,
    ("valkey", 7, 2): 11,
    ("valkey", 8, 0): 11,
    ("valkey", 8, 1): 11,
}


class DataFinding(Model):
    """One refusal or warning, with the stable code that names the rule."""

    code: str
    message: str


class BigKey(Model):
    db: int
    key: str
    bytes: int


class ServerDataFacts(Model):
    """What the rules need to know about one server."""

    server: str = "redis"  # redis or valkey
    version: str = ""  # the product's own version (valkey_version for Valkey)
    redis_version: str = ""
    # The RDB version of the server's DUMP payloads (None: unknown); a server reads up to its own.
    rdb_version: int | None = None
    used_memory: Annotated[int, Field(ge=0)] = 0
    used_memory_dataset: Annotated[int | None, Field(ge=0)] = None
    maxmemory: Annotated[int, Field(ge=0)] = 0
    maxmemory_policy: str = "noeviction"
    keys_by_db: dict[str, int] = {}
    cluster_enabled: bool = False
    # The highest database number the server accepts (None: not probed).
    max_db: int | None = None
    big_keys: list[BigKey] = []
    sampled_keys: int = 0
    # INFO replication's role (master, slave); "" when not read.
    role: str = ""
    # What ElastiCache's API says the server is (DescribeReplicationGroups, DescribeCacheClusters),
    # when it differs from what the server itself answers: e.g. "valkey 8.0".
    described_as: str | None = None

    @property
    def readable_rdb_version(self) -> int | None:
        """The newest RDB version this server reads: its own, or its release's when unknown."""
        return (
            self.rdb_version if self.rdb_version is not None else known_rdb_version(self.server, self.version)
        )

    @property
    def dataset_bytes(self) -> int:
        return self.used_memory_dataset if self.used_memory_dataset is not None else self.used_memory


class DataPreflight(Model):
    """The data rules' verdict: refusals stop the run before anything changes, warnings are shown."""

    refusals: list[DataFinding]
    warnings: list[DataFinding]
    source: ServerDataFacts
    target: ServerDataFacts

    @property
    def ok(self) -> bool:
        return not self.refusals


# ---------------------------------------------------------------------------------------------
# Pure rules.


def rdb_version_of(payload: bytes) -> int:
    """The RDB version a DUMP payload was written with: the 2 little-endian bytes before its CRC64."""
    if len(payload) < 10:
        raise ValueError("not a DUMP payload: shorter than its version and checksum")
    return int.from_bytes(payload[-10:-8], "little")


def known_rdb_version(server: str, version: str) -> int | None:
    """The RDB version a release writes, from :data:`KNOWN_RDB_VERSIONS` (None: unknown)."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:2]]
    if len(parts) < 2:
        return None
    return KNOWN_RDB_VERSIONS.get((server, parts[0], parts[1]))


def check_dump_version(source: ServerDataFacts, target: ServerDataFacts) -> DataFinding | None:
    """``DumpVersionUnsupported`` when the target cannot RESTORE the source's payloads."""
    written, readable = source.rdb_version, target.readable_rdb_version
    if written is None or readable is None:
        return None
    if written > readable:
        return DataFinding(
            code="DumpVersionUnsupported",
            message=(
                f"the source ({source.server} {source.version}) writes RDB version {written}; the target "
                f"({target.server} {target.version}) "
                f"reads up to {readable}: RESTORE would refuse every key. Install a newer server."
            ),
        )
    return None


def check_reverse_version(source: ServerDataFacts, target: ServerDataFacts) -> DataFinding | None:
    """``ReverseCopyUnsupported`` when writes made on the target could not be copied back."""
    written = target.rdb_version if target.rdb_version is not None else target.readable_rdb_version
    readable = source.readable_rdb_version
    if written is None or readable is None or written <= readable:
        return None
    return DataFinding(
        code="ReverseCopyUnsupported",
        message=(
            f"the target writes RDB version {written}; the source ({source.server} {source.version}) "
            f"reads up to {readable}: a rollback could not copy the writes made after the cutover "
            "back. Use dataCopy warm (no copy back), or a target of the source's version."
        ),
    )


def check_memory(
    source: ServerDataFacts,
    target: ServerDataFacts,
    *,
    refuse_fill: float = REFUSE_FILL,
    warn_fill: float = WARN_FILL,
) -> DataFinding | None:
    """``DataDoesNotFit`` / ``DataFillHigh`` / ``NoMaxmemory``: the dataset against maxmemory."""
    dataset = source.dataset_bytes
    if target.maxmemory == 0:
        return DataFinding(
            code="NoMaxmemory",
            message=f"the target has no maxmemory; {_mib(dataset)} of data will use the instance's RAM",
        )
    fill = dataset / target.maxmemory
    if fill > refuse_fill:
        consequence = (
            "the copy would fail half-way with OOM"
            if target.maxmemory_policy == "noeviction"
            else f"{target.maxmemory_policy} would silently evict keys as they are copied"
        )
        return DataFinding(
            code="DataDoesNotFit",
            message=(
                f"the source holds {_mib(dataset)} of data, {fill:.0%} of the target's maxmemory "
                f"{_mib(target.maxmemory)} (at most {refuse_fill:.0%}): {consequence}. Raise maxmemory."
            ),
        )
    if fill > warn_fill:
        return DataFinding(
            code="DataFillHigh",
            message=f"the data will fill {fill:.0%} of the target's maxmemory {_mib(target.maxmemory)}",
        )
    return None


def check_big_keys(
    source: ServerDataFacts,
    *,
    big_key_bytes: int = BIG_KEY_BYTES,
    max_bytes: int = MAX_RESTORE_BYTES,
    copy_function_bytes: int | None = None,
    copy_function_mb: int | None = None,
) -> list[DataFinding]:
    """``KeyTooLarge`` for a sampled key RESTORE cannot take, or the copy function (of
    ``copy_function_mb`` MB, holding ``copy_function_bytes`` at most) could not hold;
    ``BigKeys`` for those above the threshold."""
    findings = []
    too_large = [key for key in source.big_keys if key.bytes > max_bytes]
    if too_large:
        names = ", ".join(f"{k.key!r} (db {k.db}, {_mib(k.bytes)})" for k in too_large[:MAX_BIG_KEYS_NAMED])
        findings.append(
            DataFinding(
                code="KeyTooLarge",
                message=f"keys larger than RESTORE accepts ({_mib(max_bytes)}): {names}",
            )
        )
    if copy_function_bytes is not None:
        beyond = [key for key in source.big_keys if copy_function_bytes < key.bytes <= max_bytes]
        if beyond:
            names = ", ".join(f"{k.key!r} (db {k.db}, {_mib(k.bytes)})" for k in beyond[:MAX_BIG_KEYS_NAMED])
            memory = f"{copy_function_mb} MB" if copy_function_mb else "its memory"
            findings.append(
                DataFinding(
                    code="KeyTooLarge",
                    message=(
                        f"keys larger than the copy function ({memory}) can hold "
                        f"({_mib(copy_function_bytes)}): {names}. Raise the stack parameter "
                        "MaxDataFunctionMemory, or split or delete them"
                    ),
                )
            )
        big_key_bytes = min(big_key_bytes, copy_function_bytes)
    big = [
        key
        for key in source.big_keys
        if big_key_bytes < key.bytes <= max_bytes
        and (copy_function_bytes is None or key.bytes <= copy_function_bytes)
    ]
    if big:
        names = ", ".join(f"{k.key!r} (db {k.db}, {_mib(k.bytes)})" for k in big[:MAX_BIG_KEYS_NAMED])
        findings.append(
            DataFinding(
                code="BigKeys",
                message=(
                    f"{len(big)} of {source.sampled_keys} sampled keys are above {_mib(big_key_bytes)}: "
                    f"{names}; each is copied on its own"
                ),
            )
        )
    return findings


_EVICTS_KEYS_WITHOUT_TTL = {"allkeys-lru", "allkeys-lfu", "allkeys-random"}


def check_eviction_policy(source: ServerDataFacts, target: ServerDataFacts) -> DataFinding | None:
    """``EvictionPolicyDiffers`` when the target may drop keys the source would have kept."""
    before, after = source.maxmemory_policy, target.maxmemory_policy
    if before == after:
        return None
    if after in _EVICTS_KEYS_WITHOUT_TTL and before not in _EVICTS_KEYS_WITHOUT_TTL:
        detail = "keys without a TTL, which the source never evicts, become evictable on the target"
    elif after == "noeviction":
        detail = "the target refuses writes when full where the source evicted"
    else:
        detail = "a different set of keys may be evicted when memory is full"
    return DataFinding(
        code="EvictionPolicyDiffers",
        message=f"maxmemory-policy {before} on the source, {after} on the target: {detail}",
    )


def check_role(source: ServerDataFacts) -> DataFinding | None:
    """``SourceIsReplica``: the source is not a primary."""
    if source.role and source.role != "master":
        return DataFinding(
            code="SourceIsReplica",
            message=(
                f"the source answers role:{source.role}: a replica (a replica's node endpoint or the reader "
                "endpoint), whose data lags the primary's. Give the primary endpoint"
            ),
        )
    return None


def with_described_engine(facts: ServerDataFacts, group: ElastiCacheSourceFacts | None) -> ServerDataFacts:
    """The source's facts with what ElastiCache's API says it runs: the engine and version the
    rules and messages name, and as RDB version the newer of the described release's and the
    DUMP's (they agree on AWS; see ``SourceVersionDiffers``)."""
    if group is None or not group.engine_version:
        return facts
    described = known_rdb_version(group.engine, group.engine_version)
    measured = facts.rdb_version
    known = [version for version in (described, measured) if version is not None]
    differs = described is not None and measured is not None and described != measured
    return facts.model_copy(
        update={
            "server": group.engine,
            "version": group.engine_version,
            "rdb_version": max(known) if known else None,
            "described_as": f"{facts.server} {facts.version} (RDB {measured})" if differs else None,
        }
    )


def check_described_version(source: ServerDataFacts) -> DataFinding | None:
    """``SourceVersionDiffers``: the server answers another release than ElastiCache describes."""
    if source.described_as is None:
        return None
    return DataFinding(
        code="SourceVersionDiffers",
        message=(
            f"ElastiCache describes the source as {source.server} {source.version}, its server answers "
            f"{source.described_as}: the rules take RDB version {source.rdb_version}"
        ),
    )


def check_cluster_mode(source: ServerDataFacts) -> DataFinding | None:
    """``ClusterModeSource``: a sharded source cannot be copied by one SCAN."""
    if source.cluster_enabled:
        return DataFinding(
            code="ClusterModeSource",
            message="the source runs in cluster mode: its keys are on shards one SCAN does not cover",
        )
    return None


def check_databases(source: ServerDataFacts, target: ServerDataFacts) -> DataFinding | None:
    """``DatabaseOutOfRange``: the source has keys in a database the target does not have."""
    if target.max_db is None:
        return None
    beyond = sorted(int(db) for db in source.keys_by_db if int(db) > target.max_db)
    if beyond:
        return DataFinding(
            code="DatabaseOutOfRange",
            message=f"the source has keys in databases {beyond}; the target has 0..{target.max_db}",
        )
    return None


_REFUSALS = {"DumpVersionUnsupported", "ReverseCopyUnsupported", "DataDoesNotFit", "KeyTooLarge"}
_REFUSALS |= {"ClusterModeSource", "DatabaseOutOfRange", "SourceIsReplica"}


def evaluate(
    source: ServerDataFacts,
    target: ServerDataFacts,
    *,
    copy_back: bool = False,
    refuse_fill: float = REFUSE_FILL,
    warn_fill: float = WARN_FILL,
    big_key_bytes: int = BIG_KEY_BYTES,
    copy_function_mb: int | None = None,
) -> DataPreflight:
    """Every rule; ``copy_back``: a rollback will copy the target's writes back to the source;
    ``copy_function_mb``: the copy function's memory (the largest key it can hold)."""
    capacity = max_key_bytes_for(copy_function_mb) if copy_function_mb else None
    findings: list[DataFinding | None] = [
        check_role(source),
        check_described_version(source),
        check_cluster_mode(source),
        check_databases(source, target),
        check_dump_version(source, target),
        check_reverse_version(source, target) if copy_back else None,
        check_memory(source, target, refuse_fill=refuse_fill, warn_fill=warn_fill),
        *check_big_keys(
            source,
            big_key_bytes=big_key_bytes,
            copy_function_bytes=capacity,
            copy_function_mb=copy_function_mb,
        ),
        check_eviction_policy(source, target),
    ]
    if sum(source.keys_by_db.values()) and source.rdb_version is None:
        findings.append(
            DataFinding(code="DumpVersionUnknown", message="the source's RDB version could not be read")
        )
    if target.readable_rdb_version is None:
        findings.append(
            DataFinding(
                code="DumpVersionUnknown",
                message=f"which RDB versions {target.server} {target.version} reads is not known",
            )
        )
    present = [finding for finding in findings if finding is not None]
    return DataPreflight(
        refusals=[f for f in present if f.code in _REFUSALS],
        warnings=[f for f in present if f.code not in _REFUSALS],
        source=source,
        target=target,
    )


def _mib(size: int) -> str:
    return f"{size / 1024**2:,.1f} MiB"


# ---------------------------------------------------------------------------------------------
# Reads.


def _info(link: RedisLink, section: str) -> dict[str, str]:
    raw = link.command("INFO", section)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    answer = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, value = line.partition(":")
            answer[name.strip()] = value.strip()
    return answer


def _server_facts(link: RedisLink) -> dict[str, object]:
    server = _info(link, "server")
    memory = _info(link, "memory")
    cluster = _info(link, "cluster")
    is_valkey = "valkey_version" in server or server.get("server_name") == "valkey"
    dataset = memory.get("used_memory_dataset")
    return {
        "server": "valkey" if is_valkey else "redis",
        "version": server.get("valkey_version") or server.get("redis_version", ""),
        "redis_version": server.get("redis_version", ""),
        "used_memory": int(memory.get("used_memory", 0)),
        "used_memory_dataset": int(dataset) if dataset is not None else None,
        "maxmemory": int(memory.get("maxmemory", 0)),
        "maxmemory_policy": memory.get("maxmemory_policy", "noeviction"),
        "keys_by_db": {str(db): n for db, n in sorted(keyspace(link).items())},
        "cluster_enabled": cluster.get("cluster_enabled") == "1",
    }


def read_source_facts(
    link: RedisLink, *, samples: int = BIG_KEY_SAMPLES, big_key_bytes: int = BIG_KEY_BYTES
) -> ServerDataFacts:
    """The source's facts, read-only: INFO; a DUMP of one random key (its RDB version); the size of
    ``samples`` random keys (RANDOMKEY, MEMORY USAGE), spread over the databases by key count;
    those above ``big_key_bytes`` are kept (the largest first)."""
    facts = _server_facts(link)
    facts["role"] = server_identity(link).role
    keys_by_db: dict[str, int] = facts["keys_by_db"]  # type: ignore[assignment]
    total = sum(keys_by_db.values())
    rdb_version = None
    big: list[BigKey] = []
    sampled = 0
    for db_text, count in keys_by_db.items():
        db = int(db_text)
        link.select(db)
        share = max(1, round(samples * count / total)) if total else 0
        keys = _pipelined(link, [("RANDOMKEY",)] * share)
        keys = list(dict.fromkeys(k for k in keys if k is not None))
        sizes = _pipelined(link, [("MEMORY", "USAGE", k) for k in keys])
        if rdb_version is None:
            # The version from a small key's DUMP: its size is known before the DUMP holds anything.
            small = [k for k, n in zip(keys, sizes, strict=True) if n and int(n) <= VERSION_PROBE_MAX_BYTES]
            payload = link.command("DUMP", small[0]) if small else None
            if payload:
                rdb_version = rdb_version_of(bytes(payload))
        sampled += len(keys)
        big += [
            BigKey(db=db, key=key_label(bytes(k)), bytes=int(size))
            for k, size in zip(keys, sizes, strict=True)
            if size is not None and int(size) > big_key_bytes
        ]
    link.select(0)
    big.sort(key=lambda k: -k.bytes)
    return ServerDataFacts.model_validate(
        {**facts, "rdb_version": rdb_version, "big_keys": big[:MAX_BIG_KEYS_NAMED], "sampled_keys": sampled}
    )


def read_target_facts(link: RedisLink, *, probe_databases: int = 16) -> ServerDataFacts:
    """The target's facts: INFO; its RDB version from a probe key (SET with a 60 s expiry, DUMP,
    DEL); the highest database it accepts, up to ``probe_databases`` - 1 (SELECT)."""
    facts = _server_facts(link)
    probe = PROBE_KEY_PREFIX + secrets.token_hex(8)
    link.command("SET", probe, "probe", "PX", 60_000)
    try:
        payload = link.command("DUMP", probe)
    finally:
        link.command("DEL", probe)
    max_db = 0
    try:
        for db in range(1, probe_databases):
            try:
                link.command("SELECT", db)
            except ResponseError:  # ERR DB index is out of range
                break
            max_db = db
    finally:
        link.command("SELECT", 0)
    return ServerDataFacts.model_validate(
        {**facts, "rdb_version": rdb_version_of(bytes(payload)) if payload else None, "max_db": max_db}
    )


def running_server_facts(link: RedisLink) -> ServerDataFacts:
    """A running server's facts from INFO alone (no probe key: nothing is written to it)."""
    return ServerDataFacts.model_validate(_server_facts(link))


def planned_target_facts(
    *, maxmemory: int, maxmemory_policy: str, server: str = "redis", version: str = ""
) -> ServerDataFacts:
    """The target as a run will configure it, before it exists (the plan's maxmemory and policy;
    the server and version the install will put there, when known)."""
    return ServerDataFacts(server=server, version=version, redis_version=version, maxmemory=maxmemory,
                           maxmemory_policy=maxmemory_policy)  # fmt: skip


def _pipelined(link: RedisLink, commands: list[tuple[Any, ...]]) -> list[Any]:
    for command in commands:
        link.send(*command)
    return [link.receive() for _ in commands]


__all__ = [
    "BigKey",
    "DataFinding",
    "DataPreflight",
    "ServerDataFacts",
    "evaluate",
    "known_rdb_version",
    "planned_target_facts",
    "rdb_version_of",
    "read_source_facts",
    "read_target_facts",
    "running_server_facts",
    "with_described_engine",
]
