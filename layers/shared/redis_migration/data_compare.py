"""Comparing keys between two Redis servers: type, a digest of the content, the absolute expiry.

Each side computes a key's state itself, inside Redis (``lua/key_state.lua``): the source's
script answers a batch of (key, type, expiry, digest) records packed in MessagePack, the target's
script takes those records as they are, computes its own and answers only the counts and the
keys that differ. Python handles no per-key data on the way: a comparison costs two round trips
per batch and the servers' CPU, which is what makes it fast (see ``benchmarks/data_copy.py``).

Keys too large for a script to read at once (a collection above ``max_elements`` elements, a
string above ``max_string`` bytes) come back as "recheck"; :func:`read_key_state` reads those
in chunks, on both sides, and computes the same digest the script would.

The digest (the same in Lua and here): SHA-1 of ``<type>\\n<canonical content>``, the canonical
content of :mod:`redis_migration.data_digest` v1 without the key name: a string's value framed
(``<length>:<bytes>``; a HyperLogLog without its cached cardinality), a list's or stream's
elements framed in order, a hash's, set's or sorted set's XOR of the SHA-1 of each framed element
(independent of the order a server returns them in; no sort, whose order would depend on the
server's locale). Expiries are absolute unix milliseconds of each server's own clock; they are
equal when within ``ttl_tolerance_ms``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from redis_migration.redis_link import RedisLink, Script

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


@dataclass(frozen=True)
class KeyState:
    """A key as one server holds it: its type (``none``: absent), absolute expiry (-1: none) and
    content digest (``unstable``: it kept changing while read)."""

    kind: str
    expiry: int
    digest: str


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


def difference(source: KeyState, target: KeyState, ttl_tolerance_ms: int) -> str | None:
    """Why the target's state of a key is not the source's (``compare_batch.lua``'s reasons), or None."""
    if source.kind == "none":
        return "extra" if target.kind != "none" else None
    if target.kind == "none":
        return "missing"
    if source.kind != target.kind:
        return "type"
    if source.digest != target.digest or source.digest == "unstable":
        return "value"
    if (source.expiry == -1) != (target.expiry == -1):
        return "ttl"
    if source.expiry != -1 and abs(source.expiry - target.expiry) > ttl_tolerance_ms:
        return "ttl"
    return None


def _frame(value: bytes) -> bytes:
    return b"%d:%s" % (len(value), value)


def _xor_hex(elements: list[bytes]) -> tuple[int, int]:
    acc = 0
    for element in elements:
        acc ^= int.from_bytes(hashlib.sha1(element).digest(), "big")  # noqa: S324 - a checksum
    return acc, len(elements)


def _score(score: bytes) -> bytes:
    return format(float(score), ".17g").encode()


def read_key_state(link: RedisLink, key: bytes, *, chunk: int = CHUNK) -> KeyState:
    """A key's state read in chunks from ``link``'s current database (for keys too large for a
    script). The digest equals the one ``key_state.lua`` computes for the same content."""
    kind = link.command("TYPE", key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "none":
        return KeyState("none", -1, "")
    if link.expiry_command == "pexpiretime":
        expiry = int(link.command("PEXPIRETIME", key))
    else:
        seconds, micros = link.command("TIME")
        expiry = int(link.command("PTTL", key))
        if expiry >= 0:
            expiry += int(seconds) * 1000 + int(micros) // 1000
    if expiry == -2:
        return KeyState("none", -1, "")
    for _ in range(UNSTABLE_ATTEMPTS):
        digest = _content_digest(link, key, kind, chunk)
        if digest is not None:
            return KeyState(kind, expiry, digest)
    return KeyState(kind, expiry, "unstable")


def _content_digest(link: RedisLink, key: bytes, kind: str, chunk: int) -> str | None:
    """The digest, or None when the key changed while it was read."""
    body = hashlib.sha1(kind.encode() + b"\n")  # noqa: S324 - a checksum
    if kind == "string":
        length = int(link.command("STRLEN", key))
        body.update(b"%d:" % length)
        step = max(chunk, 1) * 1024
        for start in range(0, length, step):
            body.update(bytes(link.command("GETRANGE", key, start, min(start + step, length) - 1)))
        return body.hexdigest() if int(link.command("STRLEN", key)) == length else None
    if kind not in _LENGTH:
        return "-"  # a module type: compared by type only, as the script does
    length = int(link.command(_LENGTH[kind], key))
    seen = 0
    if kind == "list":
        while seen < length:
            elements = link.command("LRANGE", key, seen, seen + chunk - 1)
            if not elements:
                break
            body.update(b"".join(_frame(bytes(e)) for e in elements))
            seen += len(elements)
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
        acc = 0
        cursor: Any = 0
        while True:
            cursor, flat = link.command(_SCAN[kind], key, cursor, "COUNT", chunk)
            flat = [bytes(x) for x in flat]
            pairs = zip(flat[0::2], flat[1::2], strict=True) if kind != "set" else iter(())
            if kind == "hash":
                elements = [_frame(f) + _frame(v) for f, v in pairs]
            elif kind == "zset":
                elements = [_frame(m) + _frame(_score(s)) for m, s in pairs]
            else:
                elements = [_frame(m) for m in flat]
            part, count = _xor_hex(elements)
            acc ^= part
            seen += count
            if cursor in (0, b"0", "0"):
                break
        body.update(b"%040x" % acc)
    # A SCAN that repeated an element (the collection was resized meanwhile) or a collection
    # that changed shows as a count that is not the length.
    if seen != length or int(link.command(_LENGTH[kind], key)) != length:
        return None
    return body.hexdigest()


def key_label(key: bytes, limit: int = 120) -> str:
    """A key name for a report: UTF-8 where it is, ``\\xNN`` escapes elsewhere, truncated."""
    text = key.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[: limit - 3] + "..."
