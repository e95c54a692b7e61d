"""Writes that only the self-hosted Redis holds: its keys missing or different on ElastiCache.

After a rollback that could not carry them back (warm mode, a copy back that met conflicts), the
clients' writes since the cutover stay where they are: this names them (how many, the first keys)
for the rollback's list of what is left to do, and says when there are none, so the copy alone can
be emptied. Read-only on both servers; bounded in time (an unfinished count says "at least").
"""

from __future__ import annotations

import time

from redis_migration.data.compare import (
    COMPARE_SCRIPT,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MAX_STRING,
    DEFAULT_TTL_TOLERANCE_MS,
    DIGEST_SCRIPT,
    compare_in_chunks,
    key_label,
    parse_comparison,
)
from redis_migration.data.copy import keyspace
from redis_migration.data.link import RedisLink
from redis_migration.models import Model

MAX_NAMED = 20
BATCH_KEYS = 500


class StrandedKeys(Model):
    """Keys of the self-hosted Redis that ElastiCache lacks or holds differently."""

    keys: int  # held by the self-hosted Redis (every database)
    differing: int
    first: list[str]  # "db<N>:<key>", at most MAX_NAMED
    complete: bool  # False: the time ran out; ``differing`` is a lower bound


def find_stranded(here: RedisLink, there: RedisLink, time_budget_s: float) -> StrandedKeys:
    """Compare every key of ``here`` (the self-hosted Redis) with ``there`` (ElastiCache)."""
    deadline = time.monotonic() + time_budget_s
    counts = keyspace(here)
    differing, first = 0, list[str]()
    for db in sorted(counts):
        here.select(db)
        there.select(db)
        cursor = "0"
        while True:
            digest = (
                "scan",
                cursor,
                BATCH_KEYS,
                "all",
                "",
                here.expiry_command,
                DEFAULT_MAX_ELEMENTS,
                DEFAULT_MAX_STRING,
            )
            # The digest's reply is {cursor, packed, scanned, taken, spent}: only the first two matter here.
            cursor_raw, packed = here.script(DIGEST_SCRIPT, *digest)[:2]
            compare = (
                packed,
                DEFAULT_TTL_TOLERANCE_MS,
                0,
                there.expiry_command,
                DEFAULT_MAX_ELEMENTS,
                DEFAULT_MAX_STRING,
            )
            comparison = parse_comparison(there.script(COMPARE_SCRIPT, *compare))
            found = [key for key, _ in comparison.differences]
            found += [
                key
                for key in comparison.recheck
                if compare_in_chunks(here, there, key, DEFAULT_TTL_TOLERANCE_MS)[0] is not None
            ]
            differing += len(found)
            first += [f"db{db}:{key_label(key, 60)}" for key in found[: max(0, MAX_NAMED - len(first))]]
            cursor = cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)
            if cursor == "0":
                break
            if time.monotonic() >= deadline:
                return StrandedKeys(
                    keys=sum(counts.values()), differing=differing, first=first, complete=False
                )
    return StrandedKeys(keys=sum(counts.values()), differing=differing, first=first, complete=True)
