"""Comparing keys between two Redis servers: type, a digest of the content, the absolute expiry.

Each side computes a key's state itself, inside Redis (``lua/key_state.lua``): the source's
script answers a batch of (key, type, expiry, digest) records packed in MessagePack, the target's
script takes those records as they are, computes its own and answers only the counts and the
keys that differ. Python handles no per-key data on the way: a comparison costs two round trips
per batch and the servers' CPU, which is what makes it fast (see ``benchmarks/data_copy.py``).

Keys too large for a script to read at once (a collection above ``max_elements`` elements, a
string above ``max_string`` bytes) come back as "recheck"; :func:`read_key_state` reads those
in chunks, on both sides, and computes the same digest the script would.

The digests are defined in ``lua/key_state.lua`` (and computed the same way here): a short string
is its own digest; a list, sorted set or stream is hashed in its order (the same on every server);
a hash or set in a compact encoding (listpack, intset: the order DUMP and RESTORE keep) is hashed
in that order, otherwise by the XOR of its elements' hashes, which needs no order (and no sort,
whose order would depend on the server's locale). Expiries are absolute unix milliseconds of each
server's own clock; they are equal when within ``ttl_tolerance_ms``.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from redis_migration.data.link import RedisLink, Script

DIGEST_SCRIPT = Script.load("key_state.lua", "digest_batch.lua")
COMPARE_SCRIPT = Script.load("key_state.lua", "compare_batch.lua")
SCAN_KEYS_SCRIPT = Script.load("scan_keys.lua")
KEYS_ABSENT_SCRIPT = Script.load("keys_absent.lua")

DEFAULT_MAX_ELEMENTS = 5_000
DEFAULT_MAX_STRING = 1024 * 1024
DEFAULT_TTL_TOLERANCE_MS = 2_000
CHUNK = 1_000
UNSTABLE_ATTEMPTS = 3
# A 32-bit threshold on SHA-1(salt . key) selects a uniform sample of keys (digest_batch.lua).
SAMPLE_SPACE = 1 << 32

_LENGTH = {"list": "LLEN", "hash": "HLEN", "set": "SCARD", "zset": "ZCARD", "stream": "XLEN"}
_SCAN = {"hash": "HSCAN", "set": "SSCAN", "zset": "ZSCAN"}


SHORT_STRING = 40


@dataclass(frozen=True)
class KeyState:
    """A key as one server holds it: its type (``none``: absent), absolute expiry (-1: none) and
    content digest (``unstable``: it kept changing while read)."""

    kind: str
    expiry: int
    digest: bytes


@dataclass(frozen=True)
class BatchComparison:
    """What ``compare_batch.lua`` answered for one batch."""

    checked: int
    missing: int
    type_mismatches: int
    value_mismatches: int
    ttl_mismatches: int
    expired: int
    max_ttl_drift_ms: int
    # (key, reason) for the differences named; reasons: missing, type, value, ttl, extra.
    differences: list[tuple[bytes, str]]
    # Keys too large for a script on one side or the other: read with read_key_state.
    recheck: list[bytes]


def parse_comparison(reply: list[Any]) -> BatchComparison:
    """The reply of ``compare_batch.lua`` as a :class:`BatchComparison`."""
    named = list(reply[7])
    return BatchComparison(
        checked=int(reply[0]),
        missing=int(reply[1]),
        type_mismatches=int(reply[2]),
        value_mismatches=int(reply[3]),
        ttl_mismatches=int(reply[4]),
        expired=int(reply[5]),
        max_ttl_drift_ms=int(reply[6]),
        differences=[(bytes(k), reason.decode()) for k, reason in zip(named[0::2], named[1::2], strict=True)],
        recheck=[bytes(key) for key in reply[8]],
    )


def compare_in_chunks(
    source: RedisLink, target: RedisLink, key: bytes, ttl_tolerance_ms: int
) -> tuple[str | None, int]:
    """(why the key differs or None, TTL drift in ms) for a key read in chunks on both sides;
    order-free when one side keeps a compact encoding's order and the other does not."""
    here, there = read_key_state(source, key), read_key_state(target, key)
    if is_ordered_digest(here.digest) != is_ordered_digest(there.digest):
        here = read_key_state(source, key, order_free=True)
        there = read_key_state(target, key, order_free=True)
    drift = abs(here.expiry - there.expiry) if -1 not in (here.expiry, there.expiry) else 0
    return difference(here, there, ttl_tolerance_ms), drift


def difference(source: KeyState, target: KeyState, ttl_tolerance_ms: int) -> str | None:
    """Why the target's state of a key is not the source's (``compare_batch.lua``'s reasons), or None."""
    if source.kind == "none":
        return "extra" if target.kind != "none" else None
    if target.kind == "none":
        return "missing"
    if source.kind != target.kind:
        return "type"
    if source.digest != target.digest or source.digest == b"unstable":
        return "value"
    if (source.expiry == -1) != (target.expiry == -1):
        return "ttl"
    if source.expiry != -1 and abs(source.expiry - target.expiry) > ttl_tolerance_ms:
        return "ttl"
    return None


def _is_hyperloglog(head: bytes) -> bool:
    """A HyperLogLog's header: ``HYLL``, the encoding (0 dense, 1 sparse), three zero bytes."""
    return len(head) >= 16 and head[:4] == b"HYLL" and head[4] <= 1 and head[5:8] == b"\0\0\0"


def _frame(value: bytes) -> bytes:
    return b"%d:%s" % (len(value), value)


def _xor_hex(elements: list[bytes]) -> tuple[int, int]:
    """The XOR of the first 64 bits of each element's SHA-1, and how many elements."""
    acc = 0
    for element in elements:
        acc ^= int.from_bytes(hashlib.sha1(element).digest()[:8], "big")  # noqa: S324 - a checksum
    return acc, len(elements)


def _score(score: bytes) -> bytes:
    """A score as the 8 bytes of its little-endian double (servers print scores differently)."""
    return struct.pack("<d", float(score))


def read_key_state(link: RedisLink, key: bytes, *, chunk: int = CHUNK, order_free: bool = False) -> KeyState:
    """A key's state read in chunks from ``link``'s current database (for keys too large for a
    script). The digest is the one ``key_state.lua`` computes for the same content; with
    ``order_free`` a hash or set always gets the order-free digest (to compare a compact encoding
    on one server with a hash table on the other)."""
    kind = link.command("TYPE", key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "none":
        return KeyState("none", -1, b"")
    if link.expiry_command == "pexpiretime":
        expiry = int(link.command("PEXPIRETIME", key))
    else:
        seconds, micros = link.command("TIME")
        expiry = int(link.command("PTTL", key))
        if expiry >= 0:
            expiry += int(seconds) * 1000 + int(micros) // 1000
    if expiry == -2:
        return KeyState("none", -1, b"")
    for _ in range(UNSTABLE_ATTEMPTS):
        digest = _content_digest(link, key, kind, chunk, order_free)
        if digest is not None:
            return KeyState(kind, expiry, digest)
    return KeyState(kind, expiry, b"unstable")


def is_ordered_digest(digest: bytes) -> bool:
    """A hash's or set's digest of its compact encoding's order (``o`` and the SHA-1)."""
    return digest[:1] == b"o"


def _string_digest(link: RedisLink, key: bytes, chunk: int) -> bytes | None:
    length = int(link.command("STRLEN", key))
    head = bytes(link.command("GETRANGE", key, 0, 15)) if length >= 16 else b""
    hyperloglog = _is_hyperloglog(head)
    canonical_length = length - 8 if hyperloglog else length
    if canonical_length <= SHORT_STRING:
        value = bytes(link.command("GET", key))
        return b"=" + (value[:8] + value[16:] if hyperloglog else value)
    body = hashlib.sha1(b"string\n")  # noqa: S324 - a checksum
    start = 0
    if hyperloglog:
        # Without the cached cardinality (bytes 8-15), which PFCOUNT rewrites.
        body.update(b"%d:%s" % (canonical_length, head[:8]))
        start = 16
    else:
        body.update(b"%d:" % length)
    step = max(chunk, 1) * 1024
    for offset in range(start, length, step):
        body.update(bytes(link.command("GETRANGE", key, offset, min(offset + step, length) - 1)))
    return body.hexdigest().encode() if int(link.command("STRLEN", key)) == length else None


def _content_digest(link: RedisLink, key: bytes, kind: str, chunk: int, order_free: bool) -> bytes | None:
    """The digest, or None when the key changed while it was read."""
    if kind == "string":
        return _string_digest(link, key, chunk)
    if kind not in _LENGTH:
        return b"-"  # a module type: compared by type only, as the script does
    length = int(link.command(_LENGTH[kind], key))
    body = hashlib.sha1(kind.encode() + b"\n")  # noqa: S324 - a checksum
    seen = 0
    ordered = False
    if kind in ("list", "zset"):
        command = ("LRANGE",) if kind == "list" else ("ZRANGE",)
        while seen < length:
            extra = ("WITHSCORES",) if kind == "zset" else ()
            elements = [bytes(e) for e in link.command(*command, key, seen, seen + chunk - 1, *extra)]
            if not elements:
                break
            if kind == "zset":
                elements = [v if i % 2 == 0 else _score(v) for i, v in enumerate(elements)]
            body.update(b"".join(_frame(e) for e in elements))
            seen += len(elements) // (2 if kind == "zset" else 1)
    elif kind == "stream":
        from_id = b"-"
        while True:
            entries = link.command("XRANGE", key, from_id, "+", "COUNT", chunk)
            for entry_id, fields in entries:
                body.update(_frame(bytes(entry_id)) + b"%d:" % len(fields))
                body.update(b"".join(_frame(bytes(f)) for f in fields))
            seen += len(entries)
            if len(entries) < chunk:
                break
            from_id = b"(" + bytes(entries[-1][0])
    else:
        encoding = bytes(link.command("OBJECT", "ENCODING", key))
        ordered = not order_free and encoding in (b"listpack", b"ziplist", b"intset")
        acc = 0
        cursor: Any = 0
        while True:
            # A compact encoding is scanned whole, in its order, in one call.
            cursor, flat = link.command(_SCAN[kind], key, cursor, "COUNT", chunk)
            flat = [bytes(x) for x in flat]
            if ordered:
                body.update(b"".join(_frame(x) for x in flat))
                seen += len(flat) // (2 if kind == "hash" else 1)
            else:
                pairs = zip(flat[0::2], flat[1::2], strict=True) if kind == "hash" else iter(())
                elements = (
                    [_frame(f) + _frame(v) for f, v in pairs] if kind == "hash" else [_frame(m) for m in flat]
                )
                part, count = _xor_hex(elements)
                acc ^= part
                seen += count
            if cursor in (0, b"0", "0"):
                break
        if not ordered:
            body.update(b"%016x" % acc)
    # A SCAN that repeated an element (the collection was resized meanwhile) or a collection
    # that changed shows as a count that is not the length.
    if seen != length or int(link.command(_LENGTH[kind], key)) != length:
        return None
    return (b"o" if ordered else b"") + body.hexdigest().encode()


def key_label(key: bytes, limit: int = 120) -> str:
    """A key name for a report: UTF-8 where it is, ``\\xNN`` escapes elsewhere, truncated."""
    text = key.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[: limit - 3] + "..."
