"""A Redis's data as the rehearsal compares it before and after a run: key by key, TTLs allowed to run out.

The canonical digest (:mod:`redis_migration.data.digest`) is exact but needs the data to hold
still while it is read: a key whose TTL runs out during the pass, or a client that writes, makes
it raise ``DigestUnstable``. A cache is full of short TTLs, and a rehearsal's writers
(:mod:`~redis_migration_ops.rehearsal.client_writes`) write all the time. So the rehearsal's
"as before" for data reads every key once, here:

- each key's type and whole content are hashed in a canonical form (hashes and sets sorted, scores
  as ``%.17g``, HyperLogLogs without their cached cardinality: the same rules as the digest, so a
  restart or a copy that changes a key's encoding is no difference), and its absolute expiry kept
  (``PTTL`` against the server's ``TIME``: commands the host's read-only admin user may run); a key
  that vanishes between SCAN and its read is counted as gone;
- the writers' keys (``exclude``: the ledger's prefix) are left out: the ledger judges them, write
  by write (:mod:`~redis_migration_ops.rehearsal.ledger`);
- :meth:`DataSnapshot.compare` names what differs (missing, new, changed content, a TTL added,
  removed or moved) and counts apart the keys that are gone because their TTL said so by the time
  the second snapshot was read: those expired, which is not a difference.

Memory: one small record per key, so at most ``MAX_KEYS`` keys are read this way; a larger
dataset is compared by the canonical digest (:func:`digest_or_none`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis_migration.data.digest import (
    DigestLimitExceeded,
    DigestUnstable,
    canonical_score,
    canonical_string,
    digest_redis,
    frame,
)

MAX_KEYS = 500_000
SCAN_COUNT = 1000
# A TTL moved by less than this is the same TTL (a copy back restores it to the millisecond; a
# clock read twice is not that exact).
TTL_TOLERANCE_MS = 1000
# How many keys a difference line names.
EXAMPLES = 5


class SnapshotTooLarge(Exception):
    """More keys than :data:`MAX_KEYS`: the per-key snapshot would hold too much in memory."""


@dataclass(frozen=True)
class KeyRecord:
    content: bytes  # SHA-1 of the key's DUMP
    expires_at_ms: int  # -1: no TTL


@dataclass(eq=False)
class DataSnapshot:
    """(db, key) -> its record, for every key but the excluded ones."""

    keys: dict[tuple[int, bytes], KeyRecord]
    # The server's clock (ms) when the pass ended: a key whose expiry is before it may be gone.
    read_at_ms: int
    excluded: int = 0
    # Keys SCAN named that were gone by the time they were read (their TTL, or a client).
    vanished: int = 0
    # The canonical digest instead, for a dataset above MAX_KEYS (keys, digest); None: per key.
    digest: tuple[int, str] | None = None
    unreadable: str | None = None

    @property
    def count(self) -> int:
        return self.digest[0] if self.digest is not None else len(self.keys)

    def compare(self, after: DataSnapshot) -> tuple[list[str], int]:
        """(what differs in ``after``, one line per kind; how many keys expired as their TTL said)."""
        if self.unreadable and after.unreadable:
            return [], 0
        if self.unreadable or after.unreadable:
            return [
                f"not readable {'before' if self.unreadable else 'after'}: "
                f"{self.unreadable or after.unreadable}"
            ], 0
        if self.digest is not None or after.digest is not None:
            if self.digest != after.digest:
                return [f"{self.digest} -> {after.digest}"], 0
            return [], 0
        missing: list[tuple[int, bytes]] = []
        expired = 0
        changed: list[tuple[int, bytes]] = []
        ttl: list[tuple[int, bytes]] = []
        for name, record in self.keys.items():
            now = after.keys.get(name)
            if now is None:
                if 0 <= record.expires_at_ms <= after.read_at_ms:
                    expired += 1
                else:
                    missing.append(name)
            elif now.content != record.content:
                changed.append(name)
            elif (record.expires_at_ms < 0) != (now.expires_at_ms < 0) or (
                abs(record.expires_at_ms - now.expires_at_ms) > TTL_TOLERANCE_MS
            ):
                ttl.append(name)
        new = [name for name in after.keys if name not in self.keys]
        lines = [
            f"{len(names)} key(s) {what} (e.g. {_examples(names)})"
            for names, what in (
                (missing, "missing (no TTL ran out)"),
                (new, "new"),
                (changed, "with other content"),
                (ttl, "with another TTL"),
            )
            if names
        ]
        return lines, expired

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataSnapshot) and not self.compare(other)[0]

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content


@dataclass
class _Reader:
    client: Any
    exclude: bytes | None
    keys: dict[tuple[int, bytes], KeyRecord] = field(default_factory=dict)
    excluded: int = 0
    vanished: int = 0

    def database(self, db: int) -> None:
        self.client.execute_command("SELECT", db)
        cursor: Any = 0
        while True:
            cursor, names = self.client.execute_command("SCAN", cursor, "COUNT", SCAN_COUNT)
            wanted = [name for name in names if not self._excluded(name)]
            self.excluded += len(names) - len(wanted)
            if wanted:
                self._batch(db, wanted)
            if int(cursor) == 0:
                return

    def _excluded(self, name: bytes) -> bool:
        return self.exclude is not None and name.startswith(self.exclude)

    def _batch(self, db: int, names: list[bytes]) -> None:
        # Round 1: each key's type and TTL, and the server's clock to make the TTL absolute.
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("TIME")
        for name in names:
            pipe.execute_command("TYPE", name)
            pipe.execute_command("PTTL", name)
        replies = pipe.execute()
        seconds, micros = replies[0]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        typed = [
            (name, bytes(replies[1 + 2 * index]), int(replies[2 + 2 * index]))
            for index, name in enumerate(names)
        ]
        # Round 2: each key's whole content (the rehearsal's datasets are small enough).
        pipe = self.client.pipeline(transaction=False)
        for name, kind, _ in typed:
            # Another type (a module's) counts with its name and no content.
            command = _CONTENT.get(kind, ("EXISTS",))
            pipe.execute_command(command[0], name, *command[1:])
        contents = pipe.execute(raise_on_error=False)
        for (name, kind, pttl), content in zip(typed, contents, strict=True):
            if kind == b"none" or pttl == -2 or content is None or isinstance(content, redis.ResponseError):
                self.vanished += 1  # gone (a TTL, a client) or replaced by another type since round 1
                continue
            if len(self.keys) >= MAX_KEYS:
                raise SnapshotTooLarge(f"more than {MAX_KEYS} keys")
            self.keys[(db, name)] = KeyRecord(
                content=content_digest(kind, content), expires_at_ms=now_ms + pttl if pttl >= 0 else -1
            )


# The command that reads a key's whole content, by type (the key goes after the first word).
_CONTENT: dict[bytes, tuple[Any, ...]] = {
    b"string": ("GET",),
    b"list": ("LRANGE", 0, -1),
    b"hash": ("HGETALL",),
    b"set": ("SMEMBERS",),
    b"zset": ("ZRANGE", 0, -1, "WITHSCORES"),
    b"stream": ("XRANGE", "-", "+"),
}


def content_digest(kind: bytes, content: Any) -> bytes:
    """SHA-1 of a key's type and canonical content: hashes and sets in sorted order (a server's
    order depends on its hash table), scores as ``%.17g``, HyperLogLogs without their cache."""
    digest = hashlib.sha1(frame(kind))  # noqa: S324 - a checksum of content, not security
    if kind == b"string":
        digest.update(frame(canonical_string(content)))
    elif kind == b"list":
        digest.update(b"".join(frame(element) for element in content))
    elif kind == b"hash":
        pairs = (
            content.items() if isinstance(content, dict) else zip(content[0::2], content[1::2], strict=True)
        )
        digest.update(b"".join(frame(f) + frame(v) for f, v in sorted(pairs)))
    elif kind == b"set":
        digest.update(b"".join(frame(member) for member in sorted(content)))
    elif kind == b"zset":
        flat = _flat_pairs(content)
        digest.update(b"".join(frame(m) + frame(canonical_score(s)) for m, s in flat))
    elif kind == b"stream":
        for entry_id, fields in content:
            entry = (
                fields.items() if isinstance(fields, dict) else zip(fields[0::2], fields[1::2], strict=True)
            )
            digest.update(frame(entry_id) + b"".join(frame(f) + frame(v) for f, v in entry))
    return digest.digest()


def _flat_pairs(content: Any) -> list[tuple[bytes, bytes]]:
    if content and isinstance(content[0], (list, tuple)):
        return [(bytes(m), str(s).encode() if not isinstance(s, bytes) else s) for m, s in content]
    return list(zip(content[0::2], content[1::2], strict=True))


def _databases(client: Any) -> list[int]:
    keyspace = client.info("keyspace")
    return sorted(int(name[2:]) for name in keyspace if str(name).startswith("db"))


def read_snapshot(kwargs: dict[str, Any], *, exclude: bytes | None = None) -> DataSnapshot:
    """Every key of the server ``kwargs`` (redis.Redis arguments) reach, but those starting with
    ``exclude``. Above :data:`MAX_KEYS`: the canonical digest instead (None if it cannot hold still)."""
    client: Any = redis.Redis(**{**kwargs, "decode_responses": False, "db": 0})
    try:
        reader = _Reader(client, exclude)
        try:
            for db in _databases(client):
                reader.database(db)
        except SnapshotTooLarge:
            return DataSnapshot(keys={}, read_at_ms=_server_ms(client), digest=digest_or_none(client))
        return DataSnapshot(
            keys=reader.keys,
            read_at_ms=_server_ms(client),
            excluded=reader.excluded,
            vanished=reader.vanished,
        )
    except redis.RedisError as error:
        return DataSnapshot(keys={}, read_at_ms=0, unreadable=str(error))
    finally:
        client.close()


def digest_or_none(client: redis.Redis) -> tuple[int, str] | None:
    """The canonical digest (keys, digest), or None when the data would not hold still."""
    try:
        digest = digest_redis(client)
    except (DigestUnstable, DigestLimitExceeded):
        return None
    return digest.keys, digest.digest


def _server_ms(client: Any) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _examples(names: Iterable[tuple[int, bytes]]) -> str:
    shown = [f"{name!r} (db {db})" for db, name in list(names)[:EXAMPLES]]
    return ", ".join(shown)
