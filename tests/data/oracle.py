"""An independent reading of a Redis's data (plain redis-py reads, no script of ours) for the tests."""

from __future__ import annotations

from typing import Any

import redis

Snapshot = dict[tuple[int, bytes], tuple[str, Any, int]]


def _content(client: Any, key: bytes, kind: str) -> Any:
    if kind == "string":
        value = client.get(key)
        # A HyperLogLog's cached cardinality (bytes 8-15) is rewritten by PFCOUNT: not content.
        return value[:8] + value[16:] if value[:4] == b"HYLL" else value
    if kind == "hash":
        return client.hgetall(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "set":
        return frozenset(client.smembers(key))
    if kind == "zset":
        return dict(client.zrange(key, 0, -1, withscores=True))
    if kind == "stream":
        return client.xrange(key)
    raise AssertionError(f"unexpected type {kind}")


def snapshot(kwargs: dict[str, Any], databases: range = range(16)) -> Snapshot:
    """(db, key) -> (type, content, absolute expiry in ms or -1) of every key of the server that
    ``kwargs`` (redis.Redis arguments) reach."""
    answer: Snapshot = {}
    for db in databases:
        reader: Any = redis.Redis(**{**kwargs, "db": db})
        if not reader.dbsize():
            reader.close()
            continue
        for key in reader.scan_iter(count=1000):
            kind = reader.type(key).decode()
            expiry = int(reader.execute_command("PEXPIRETIME", key))
            answer[(db, key)] = (kind, _content(reader, key, kind), expiry)
        reader.close()
    return answer


def differences(source: Snapshot, target: Snapshot, ttl_tolerance_ms: int = 100) -> list[str]:
    """Every way ``target`` is not ``source`` (empty when equal)."""
    problems = [f"missing {key!r}" for key in source.keys() - target.keys()]
    problems += [f"extra {key!r}" for key in target.keys() - source.keys()]
    for key in source.keys() & target.keys():
        (kind, content, expiry), (kind2, content2, expiry2) = source[key], target[key]
        if kind != kind2 or content != content2:
            problems.append(f"content {key!r}")
        elif (expiry == -1) != (expiry2 == -1) or abs(expiry - expiry2) > ttl_tolerance_ms:
            problems.append(f"ttl {key!r}: {expiry} vs {expiry2}")
    return problems
