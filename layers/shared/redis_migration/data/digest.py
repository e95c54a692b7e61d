"""A canonical digest of a Redis dataset: equal on two servers exactly when they hold the same data.

"The same data" is, per database: the same key names (binary-safe), each of the same type with
the same content, and the same keys carrying a TTL (whether a key expires, not when: a TTL moves
every millisecond and differs between a source and its copy by the copy's duration).

Canonical content, version ``v1`` (``frame(b)`` is ``<decimal length>:<bytes>``):

- string: ``frame(value)``; a HyperLogLog (a string starting with the ``HYLL`` header) without
  its 8 cached-cardinality bytes, which ``PFCOUNT`` rewrites without changing the set;
- list: ``frame(e)`` of each element, in order;
- stream: for each entry in order ``frame(id)``, the number of field/value strings, ``:``, then
  ``frame(x)`` of each (consumer groups and their pending lists are not covered);
- hash, set, sorted set: the XOR of the SHA-1 of each element (``frame(field) frame(value)``,
  ``frame(member)``, ``frame(member) frame(score)`` with the score printed ``%.17g``), as 40 hex
  digits: independent of the order the server returns them in, and streamable;
- a key's hash is SHA-1 over ``v1\\n<db>\\n<type>\\n<0|1 has TTL>\\n frame(key)`` and its content;
- the dataset's digest is SHA-1 over ``v1\\n<key count>\\n<XOR of every key's hash, 40 hex>``.

SHA-1 and XOR because the host computes the same value inside Redis (Lua has ``redis.sha1hex``
and the ``bit`` library, nothing else), batch by batch (``host/redis_facts.sh``); XOR makes the
result independent of SCAN order, so two servers agree whatever their hash tables look like.
It detects differences, it is not a defence against someone crafting a collision.

SCAN may return a key twice when the keyspace shrinks during the iteration; a duplicate would
cancel itself out of the XOR. So a digest only counts when the number of keys seen equals DBSIZE
before and after (keys found gone are counted apart); otherwise it is taken again, a bounded
number of times, then :class:`DigestUnstable` is raised. Memory stays bounded: one SCAN batch of
keys at a time, and a collection larger than ``chunk`` elements is read in chunks (``LRANGE``,
``XRANGE`` ranges, ``HSCAN``/``SSCAN``/``ZSCAN`` whose element count is checked the same way).

Speed: every batch is sent as raw pipelined commands on one connection (no per-command client
bookkeeping): one round trip for ``TYPE``, ``PTTL`` and ``GET`` of every key (strings are done
then), two more only for the collections in the batch.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import redis
from pydantic import BaseModel, ConfigDict
from redis.connection import AbstractConnection
from redis.exceptions import ResponseError

from redis_migration.errors import MigrationError

DIGEST_VERSION = b"v1"
DEFAULT_BATCH = 1000
DEFAULT_CHUNK = 1000
DEFAULT_ATTEMPTS = 3

_KEYSPACE_LINE = re.compile(rb"^db(\d+):keys=(\d+),expires=(\d+)", re.MULTILINE)
_LENGTH_COMMAND = {b"hash": "HLEN", b"list": "LLEN", b"set": "SCARD", b"zset": "ZCARD", b"stream": "XLEN"}
_SCAN_COMMAND = {b"hash": "HSCAN", b"set": "SSCAN", b"zset": "ZSCAN"}


class DigestUnstable(MigrationError):
    """The data changed while it was being digested (keys added, removed or expired)."""


class DigestLimitExceeded(MigrationError):
    """The server holds more keys than the caller allowed to digest."""


class DataDigest(BaseModel):
    """The digest of every database of one server."""

    model_config = ConfigDict(frozen=True)

    digest: str
    keys: int
    keys_by_db: dict[int, int]
    attempts: int
    seconds: float


def frame(value: bytes) -> bytes:
    """``<decimal length>:<bytes>``: concatenations of frames cannot be ambiguous."""
    return b"%d:%s" % (len(value), value)


def canonical_string(value: bytes) -> bytes:
    """A string value, HyperLogLogs without their cached cardinality (bytes 8-15 of the header)."""
    if len(value) >= 16 and value[:4] == b"HYLL" and value[4] <= 1 and value[5:8] == b"\0\0\0":
        return value[:8] + value[16:]
    return value


def canonical_score(score: bytes) -> bytes:
    """A sorted-set score as ``%.17g`` of the double: servers print scores differently (7.0 vs 7.2)."""
    return b"%s" % format(float(score), ".17g").encode()


def key_header(db: int, kind: bytes, has_ttl: bool, key: bytes) -> bytes:
    """What every key's hash starts with."""
    return b"%s\n%d\n%s\n%s\n%s" % (DIGEST_VERSION, db, kind, b"1" if has_ttl else b"0", frame(key))


def element_xor(elements: Iterable[bytes]) -> tuple[int, int]:
    """(XOR of the SHA-1 of each element, number of elements)."""
    acc = 0
    count = 0
    for element in elements:
        acc ^= int.from_bytes(hashlib.sha1(element).digest(), "big")  # noqa: S324 - a checksum, see module doc
        count += 1
    return acc, count


def final_digest(count: int, acc: int) -> str:
    """The dataset's digest from the key count and the XOR of the key hashes."""
    return hashlib.sha1(b"%s\n%d\n%040x" % (DIGEST_VERSION, count, acc)).hexdigest()  # noqa: S324


def _pairs(flat: Sequence[bytes]) -> Iterable[tuple[bytes, bytes]]:
    return zip(flat[0::2], flat[1::2], strict=True)


def _hash_elements(flat: Sequence[bytes]) -> Iterable[bytes]:
    return (frame(field) + frame(value) for field, value in _pairs(flat))


def _set_elements(members: Sequence[bytes]) -> Iterable[bytes]:
    return (frame(member) for member in members)


def _zset_elements(flat: Sequence[bytes]) -> Iterable[bytes]:
    return (frame(member) + frame(canonical_score(score)) for member, score in _pairs(flat))


def _stream_entries(entries: Sequence[Any]) -> bytes:
    parts = []
    for entry_id, fields in entries:
        parts.append(frame(entry_id) + b"%d:" % len(fields) + b"".join(frame(x) for x in fields))
    return b"".join(parts)


_ELEMENTS = {b"hash": _hash_elements, b"set": _set_elements, b"zset": _zset_elements}


def _argument(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def pack_commands(commands: Sequence[tuple[Any, ...]]) -> bytes:
    """RESP encoding of ``commands`` (bytes, str or int arguments): a third of the digest's time
    went into redis-py's general-purpose packer, which handles cases that never occur here."""
    out = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for value in command:
            data = _argument(value)
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Pipeline:
    """Raw pipelined commands on one connection: replies (or the error reply) in order."""

    def __init__(self, connection: AbstractConnection) -> None:
        self._connection: Any = connection  # redis-py's connection methods are untyped

    def run(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        if not commands:
            return []
        return self.run_packed(pack_commands(commands), len(commands))

    def run_packed(self, packed: bytes, count: int) -> list[Any]:
        """Send ``count`` commands already RESP-encoded in ``packed``; their replies in order."""
        self._connection.send_packed_command([packed])
        replies: list[Any] = []
        failure: ResponseError | None = None
        for _ in range(count):
            try:
                replies.append(self._connection.read_response())
            except ResponseError as error:
                # WRONGTYPE is expected (GET of a non-string; a key whose type changed); any
                # other error (NOPERM, ...) is raised once every reply has been read.
                replies.append(error)
                if not str(error).startswith("WRONGTYPE") and failure is None:
                    failure = error
        if failure is not None:
            raise failure
        return replies

    def one(self, *command: Any) -> Any:
        reply = self.run([command])[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply


class _Pass:
    """One pass over every database: XOR of key hashes, keys seen, keys found gone."""

    def __init__(self, pipe: _Pipeline, batch: int, chunk: int) -> None:
        self.pipe = pipe
        self.batch = batch
        self.chunk = chunk
        self.acc = 0
        self.count = 0
        self.vanished = 0
        self.by_db: dict[int, int] = {}

    def database(self, db: int) -> None:
        self.pipe.one("SELECT", db)
        before = self.count
        cursor = b"0"
        # Ends when the server returns cursor 0 (SCAN's contract); every call is bounded by the
        # connection's socket timeout.
        while True:
            cursor, keys = self.pipe.one("SCAN", cursor, "COUNT", self.batch)
            if keys:
                self._batch(db, keys)
            if cursor in (b"0", 0):
                break
        self.by_db[db] = self.count - before

    def _add(self, digest: Any) -> None:
        self.acc ^= int.from_bytes(digest.digest(), "big")
        self.count += 1

    def _batch(self, db: int, keys: list[bytes]) -> None:
        # Round 1: PTTL and GET of every key. GET answers strings at once, WRONGTYPE otherwise.
        # Encoded in one expression per key: the generic packer was a fifth of the digest's time.
        packed = b"".join(_PTTL_GET % (len(key), key, len(key), key) for key in keys)
        replies = self.pipe.run_packed(packed, 2 * len(keys))
        others: list[tuple[bytes, bool]] = []
        for index, key in enumerate(keys):
            ttl, value = replies[2 * index], replies[2 * index + 1]
            if ttl == -2 or value is None:
                self.vanished += 1
            elif isinstance(value, bytes):
                digest = hashlib.sha1(key_header(db, b"string", ttl >= 0, key))  # noqa: S324
                digest.update(frame(canonical_string(value)))
                self._add(digest)
            else:
                others.append((key, ttl >= 0))
        if not others:
            return
        # Round 2: the type of the others. Round 3: their content, or its first chunk.
        kinds = self.pipe.run([("TYPE", key) for key, _ in others])
        typed = [(key, kind, has_ttl) for (key, has_ttl), kind in zip(others, kinds, strict=True)]
        first = self.pipe.run([self._first_chunk(key, kind) for key, kind, _ in typed])
        for (key, kind, has_ttl), content in zip(typed, first, strict=True):
            if kind == b"none" or isinstance(content, ResponseError):
                self.vanished += 1  # gone, or replaced by another type, since round 1
                continue
            digest = hashlib.sha1(key_header(db, kind, has_ttl, key))  # noqa: S324
            if kind in _FIRST_CHUNK:
                self._content(key, kind, content, digest)
            # Other types (modules) count with their name and no content.
            self._add(digest)

    def _first_chunk(self, key: bytes, kind: bytes) -> tuple[Any, ...]:
        make = _FIRST_CHUNK.get(kind)
        return make(key, self.chunk) if make else ("EXISTS", key)

    def _content(self, key: bytes, kind: bytes, first: Any, digest: Any) -> None:
        """Feed ``key``'s content to ``digest``: ``first`` is its first chunk; fetch the rest."""
        # A first chunk shorter than asked for was the whole content, read in one command.
        if kind == b"list":
            seen = len(first)
            single = seen < self.chunk
            digest.update(b"".join(frame(e) for e in first))
            while len(first) == self.chunk:
                first = self.pipe.one("LRANGE", key, seen, seen + self.chunk - 1)
                digest.update(b"".join(frame(e) for e in first))
                seen += len(first)
            complete = single or self.pipe.one("LLEN", key) == seen
        elif kind == b"stream":
            seen = len(first)
            single = seen < self.chunk
            digest.update(_stream_entries(first))
            while len(first) == self.chunk:
                first = self.pipe.one("XRANGE", key, b"(" + first[-1][0], "+", "COUNT", self.chunk)
                digest.update(_stream_entries(first))
                seen += len(first)
            complete = single or self.pipe.one("XLEN", key) == seen
        else:
            # One SCAN call that returns cursor 0 at once visited every element once; a longer
            # scan may repeat elements, which the element count against the length reveals.
            cursor, flat = first
            acc, seen = element_xor(_ELEMENTS[kind](flat))
            single = cursor in (b"0", 0)
            while cursor not in (b"0", 0):
                cursor, flat = self.pipe.one(_SCAN_COMMAND[kind], key, cursor, "COUNT", self.chunk)
                part_acc, part_count = element_xor(_ELEMENTS[kind](flat))
                acc ^= part_acc
                seen += part_count
            digest.update(b"%040x" % acc)
            complete = single or self.pipe.one(_LENGTH_COMMAND[kind], key) == seen
        if not complete:
            raise DigestUnstable(f"a {kind.decode()} changed while it was read ({seen} elements seen)")


_PTTL_GET = b"*2\r\n$4\r\nPTTL\r\n$%d\r\n%s\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n"

_FIRST_CHUNK: dict[bytes, Callable[[bytes, int], tuple[Any, ...]]] = {
    b"list": lambda key, n: ("LRANGE", key, 0, n - 1),
    b"stream": lambda key, n: ("XRANGE", key, "-", "+", "COUNT", n),
    b"hash": lambda key, n: ("HSCAN", key, 0, "COUNT", n),
    b"set": lambda key, n: ("SSCAN", key, 0, "COUNT", n),
    b"zset": lambda key, n: ("ZSCAN", key, 0, "COUNT", n),
}


def _keyspace(pipe: _Pipeline) -> dict[int, int]:
    info = pipe.one("INFO", "keyspace")
    return {int(db): int(keys) for db, keys, _ in _KEYSPACE_LINE.findall(bytes(info))}


def _connection(client: redis.Redis) -> AbstractConnection:
    pool = client.connection_pool
    # Raw bytes and RESP2 whatever the caller's client uses: key names are binary, and RESP3
    # would turn scores into doubles before we print them.
    kwargs = {**pool.connection_kwargs, "decode_responses": False, "protocol": 2, "db": 0}
    # RESP3-only features of newer clients (maintenance push notifications) do not apply here.
    for name in ("maint_notifications_config", "maint_notifications_pool_handler"):
        kwargs.pop(name, None)
    connection: Any = pool.connection_class(**kwargs)  # redis-py's connection methods are untyped
    connection.connect()
    return cast("AbstractConnection", connection)


def digest_redis(
    client: redis.Redis,
    *,
    max_keys: int | None = None,
    batch: int = DEFAULT_BATCH,
    chunk: int = DEFAULT_CHUNK,
    attempts: int = DEFAULT_ATTEMPTS,
) -> DataDigest:
    """The canonical digest of every database ``client``'s server holds (see the module doc).

    ``client`` gives the address and credentials only (its own connection settings, decoding
    and protocol do not matter). Raises :class:`DigestLimitExceeded` above ``max_keys`` keys and
    :class:`DigestUnstable` when the data kept changing over ``attempts`` passes.
    """
    started = time.monotonic()
    connection: Any = _connection(client)
    try:
        pipe = _Pipeline(connection)
        for attempt in range(1, attempts + 1):
            before = _keyspace(pipe)
            total = sum(before.values())
            if max_keys is not None and total > max_keys:
                raise DigestLimitExceeded(f"{total} keys, more than the {max_keys} allowed")
            walk = _Pass(pipe, batch, chunk)
            try:
                for db in sorted(before):
                    walk.database(db)
            except DigestUnstable:
                if attempt == attempts:
                    raise
                continue
            after = sum(_keyspace(pipe).values())
            if walk.count + walk.vanished == total and walk.count == after:
                return DataDigest(
                    digest=final_digest(walk.count, walk.acc),
                    keys=walk.count,
                    keys_by_db={db: n for db, n in walk.by_db.items() if n},
                    attempts=attempt,
                    seconds=round(time.monotonic() - started, 3),
                )
        raise DigestUnstable(
            f"the data changed during each of {attempts} passes (keys before {total}, "
            f"seen {walk.count}, gone {walk.vanished}, after {after})"
        )
    finally:
        connection.disconnect()
