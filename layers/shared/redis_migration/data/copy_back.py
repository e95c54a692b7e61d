"""The copy back of a rollback: only what the switched writers wrote, never another client's write.

After a consistent cutover the switched writers write to the self-hosted Redis; anyone else (a
client the run did not switch, a function deployed during the soak) may still write to ElastiCache.
A rollback puts the writers back on ElastiCache, so first their writes since the cutover must be
there too. Each key is judged against its state at the cutover (:mod:`redis_migration.data.baseline`),
with S its state on the self-hosted Redis now, E on ElastiCache now and B at the cutover:

=================================  ==================================================================
S equals E                         nothing to do
S equals B (E changed)             someone else wrote it on ElastiCache: theirs, kept
E equals B (S changed)             the switched writers wrote it: carried (DUMP, RESTORE ABSTTL
                                   REPLACE), or deleted on ElastiCache when they deleted it
S and E both differ from B         a conflict: both kept as they are, named, the rollback ends
                                   RollbackFailed with the list
no B, E absent                     created by the switched writers: carried
no B, E present and different      a conflict (both created it)
no B, S absent (E present)         created on ElastiCache by someone else: theirs, kept
=================================  ==================================================================

Two passes per database, resumable by SCAN cursor like the copy: the self-hosted Redis's keys
(``carry``), then ElastiCache's keys the self-hosted Redis does not hold (``extras``: deleted by the
switched writers, or created by someone else). Expiries are compared within the verification's
tolerance. A key whose encoding differs between the servers (a compact hash on one, a hash table on
the other) can only be compared with its own server's baseline: if it also changed on the other
side it is named as a conflict, never overwritten.

Only read-only scripts, SCAN, DUMP and the like reach the side carried from; only WATCH, MULTI,
RESTORE, DEL, EXEC and read-only scripts reach the side carried to. Each write is guarded: the key
is read again under WATCH and written in MULTI/EXEC, so a client's write that lands between the
judgment and the carry aborts it and the key is judged again (a conflict), never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Literal

import redis

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.data.baseline import (
    Baseline,
    ObjectDigest,
    PlainState,
    fingerprint,
    read_states,
    scan_states,
)
from redis_migration.data.compare import (
    DEFAULT_TTL_TOLERANCE_MS,
    KEYS_ABSENT_SCRIPT,
    SCAN_KEYS_SCRIPT,
    KeyState,
    compare_in_chunks,
    is_ordered_digest,
    key_label,
)
from redis_migration.data.copy import keyspace
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink, RedisUnavailable
from redis_migration.models import BaselineRef, Model, RecordLocation
from redis_migration.records import put_record

MAX_NAMED_CONFLICTS = 20
MAX_RECONNECTS = 3
BATCH_KEYS = 500


class CopyBackCounters(Model):
    compared: int = 0  # keys looked at on either side
    carried: int = 0  # written on ElastiCache as the self-hosted Redis holds them
    deleted: int = 0  # deleted on ElastiCache: the switched writers deleted them
    theirs: int = 0  # changed (or created) on ElastiCache by someone else: kept
    conflicts: int = 0  # changed on both sides: both kept, named
    invocations: int = 0
    seconds: float = 0.0


class Conflict(Model):
    db: int
    key: str  # key_label: printable, truncated
    why: str


class CopyBackProgress(Model):
    """The output of one invocation of the copy back and the input of the next."""

    databases: list[int]
    db_index: int = 0
    cursor: str = "0"
    phase: Literal["carry", "extras"] = "carry"
    counters: CopyBackCounters = CopyBackCounters()
    # The first conflicts by name; every one is in the records (``conflict_records``).
    conflicts: list[Conflict] = []
    conflict_records: list[ObjectDigest] = []
    done: bool = False


def _same(one: KeyState, other: KeyState, tolerance_ms: int) -> bool:
    if one.kind != other.kind:
        return False
    if one.kind == "none":
        return True
    if fingerprint(one) != fingerprint(other):
        return False
    return _same_expiry(one.expiry, other.expiry, tolerance_ms)


def _same_expiry(one: int, other: int, tolerance_ms: int) -> bool:
    if (one == -1) != (other == -1):
        return False
    return one == -1 or abs(one - other) <= tolerance_ms


def _as_recorded(state: KeyState, recorded: PlainState | None, tolerance_ms: int) -> bool:
    """The key is as the baseline recorded it (absent, when the baseline has no such key)."""
    if recorded is None:
        return state.kind == "none"
    if state.kind == "none":
        return False
    return fingerprint(state) == recorded.fingerprint and _same_expiry(
        state.expiry, recorded.expiry, tolerance_ms
    )


# How many times a key written during its carry is judged again before it is named a conflict.
GUARD_ATTEMPTS = 3


class CopyBack:
    """One invocation of the copy back (see the module doc)."""

    def __init__(
        self,
        self_hosted: RedisLink,
        elasticache: RedisLink,
        baseline: Baseline,
        *,
        tolerance_ms: int = DEFAULT_TTL_TOLERANCE_MS,
    ) -> None:
        self._here = self_hosted
        self._there = elasticache
        self._baseline = baseline
        self._tolerance = tolerance_ms
        self.conflicts: list[Conflict] = []

    def start(self) -> CopyBackProgress:
        databases = set(keyspace(self._here)) | set(keyspace(self._there))
        return CopyBackProgress(databases=sorted(databases), done=not databases)

    def run(self, progress: CopyBackProgress, deadline: float) -> CopyBackProgress:
        counters = progress.counters.model_copy(update={"invocations": progress.counters.invocations + 1})
        db_index, cursor, phase = progress.db_index, progress.cursor, progress.phase
        tally = counters.model_dump()
        failures = 0
        while db_index < len(progress.databases):
            db = progress.databases[db_index]
            try:
                self._here.select(db)
                self._there.select(db)
                if phase == "carry":
                    cursor = self._carry_batch(db, cursor, tally)
                else:
                    cursor = self._extras_batch(db, cursor, tally)
                failures = 0
            except (redis.ConnectionError, redis.TimeoutError, RedisUnavailable):
                failures += 1
                if failures > MAX_RECONNECTS:
                    raise
                self._here.close()
                self._there.close()
                time.sleep(min(0.2 * 2**failures, 2.0))
                continue
            if cursor == "0":
                if phase == "carry":
                    phase = "extras"
                else:
                    db_index, phase = db_index + 1, "carry"
            if time.monotonic() >= deadline:
                break
        return progress.model_copy(
            update={
                "db_index": db_index,
                "cursor": cursor,
                "phase": phase,
                "counters": CopyBackCounters(**tally),
                "conflicts": (progress.conflicts + self.conflicts)[:MAX_NAMED_CONFLICTS],
                "done": db_index >= len(progress.databases),
            }
        )

    def _differs(self, key: bytes, here: KeyState, there: KeyState) -> bool:
        if _same(here, there, self._tolerance):
            return False
        if (
            here.kind == there.kind != "none"
            and is_ordered_digest(here.digest) != is_ordered_digest(there.digest)
            and _same_expiry(here.expiry, there.expiry, self._tolerance)
        ):
            # One server keeps a compact encoding's order, the other not: compare order-free.
            return compare_in_chunks(self._here, self._there, key, self._tolerance)[0] is not None
        return True

    def _conflict(self, db: int, key: bytes, why: str, tally: dict[str, int]) -> None:
        tally["conflicts"] += 1
        self.conflicts.append(Conflict(db=db, key=key_label(key), why=why))

    def _carry_batch(self, db: int, cursor: str, tally: dict[str, int]) -> str:
        cursor, here_states = scan_states(self._here, cursor)
        keys = list(here_states)
        there_states = read_states(self._there, keys) if keys else {}
        carry: list[bytes] = []
        for key in keys:
            tally["compared"] += 1
            here, there = here_states[key], there_states[key]
            if not self._differs(key, here, there):
                continue
            recorded = self._baseline.state(db, key)
            if _as_recorded(here, recorded, self._tolerance):
                tally["theirs"] += 1  # only ElastiCache changed it: someone else's write
            elif _as_recorded(there, recorded, self._tolerance):
                carry.append(key)  # only the switched writers changed it
            elif recorded is None:
                self._conflict(db, key, "created on both sides since the cutover", tally)
            else:
                self._conflict(db, key, "changed on both sides since the cutover", tally)
        for key in carry:
            payload = self._here.command("DUMP", key)
            self._apply_guarded(db, key, payload, here_states[key].expiry, tally)
        return cursor

    def _extras_batch(self, db: int, cursor: str, tally: dict[str, int]) -> str:
        cursor_raw, packed, _count = self._there.script(SCAN_KEYS_SCRIPT, cursor, BATCH_KEYS)
        absent = [bytes(key) for key in self._here.script(KEYS_ABSENT_SCRIPT, packed)]
        there_states = read_states(self._there, absent) if absent else {}
        delete: list[bytes] = []
        for key in absent:
            tally["compared"] += 1
            there = there_states[key]
            if there.kind == "none":
                continue  # gone meanwhile (expired)
            recorded = self._baseline.state(db, key)
            if recorded is None:
                tally["theirs"] += 1  # created on ElastiCache since the cutover by someone else
            elif _as_recorded(there, recorded, self._tolerance):
                delete.append(key)  # the switched writers deleted it (or it expired here first)
            else:
                self._conflict(db, key, "deleted on the self-hosted Redis, changed on ElastiCache", tally)
        for key in delete:
            self._apply_guarded(db, key, None, -1, tally)
        return cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)

    def _apply_guarded(
        self, db: int, key: bytes, payload: bytes | None, expiry: int, tally: dict[str, int]
    ) -> None:
        """Write ``key`` on the other side (RESTORE ``payload``; DEL when None) only while that side
        still holds it as the baseline recorded it.

        The judgment above read the other side a moment ago; a client may have written the key there
        since (the catch-up runs while the switched writers write to the self-hosted Redis, and a copy
        back while others may write to ElastiCache). So: WATCH the key, read it again, and write it in
        MULTI/EXEC: a write that lands in between aborts the EXEC, and the key is judged again (then it
        changed on both sides: a conflict). Nothing is ever written over a write this did not see."""
        recorded = self._baseline.state(db, key)
        there = self._there
        for _ in range(GUARD_ATTEMPTS):
            there.command("WATCH", key)
            if not _as_recorded(read_states(there, [key])[key], recorded, self._tolerance):
                there.command("UNWATCH")
                self._conflict(db, key, "changed on both sides since the cutover", tally)
                return
            there.command("MULTI")
            if payload is None:
                there.command("DEL", key)
            else:
                # RESTORE's 0 is "no expiry"; ABSTTL takes the absolute expiry the source holds.
                there.command("RESTORE", key, max(expiry, 0), payload, "REPLACE", "ABSTTL")
            replies = there.command("EXEC")
            if replies is None:
                continue  # written meanwhile: judge it again
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            if payload is None:
                tally["deleted"] += int(replies[0] or 0)
            else:
                tally["carried"] += 1
            return
        self._conflict(db, key, "written again each time it was carried", tally)


@contextmanager
def _open(
    self_hosted: RedisEndpoint,
    self_hosted_credentials: Credentials,
    elasticache: RedisEndpoint,
    elasticache_credentials: Credentials,
    timeout_s: float,
) -> Iterator[tuple[RedisLink, RedisLink]]:
    with ExitStack() as stack:
        here = RedisLink(self_hosted, self_hosted_credentials, timeout_s=timeout_s)
        there = RedisLink(elasticache, elasticache_credentials, timeout_s=timeout_s)
        stack.callback(here.close)
        stack.callback(there.close)
        yield here.connect(), there.connect()


def copy_back(
    source: RedisEndpoint,
    source_credentials: Credentials,
    target: RedisEndpoint,
    target_credentials: Credentials,
    *,
    baseline_ref: BaselineRef,
    record: RecordLocation,
    progress: CopyBackProgress | None,
    time_budget_s: float,
    aws: AwsClients,
    timeout_s: float = 30.0,
    record_name: str = "copy-back",
) -> CopyBackProgress:
    """One invocation of a carry against the baseline, from ``progress`` (None: the start), for about
    ``time_budget_s``: what only ``source`` changed since the baseline goes to ``target``; what only
    ``target`` changed stays; what both changed is a conflict, written to ``record`` (every one, by
    name, under ``results/<record_name>/``).

    The copy back of a rollback carries from the self-hosted Redis to ElastiCache. The catch-up of
    a warm migration carries the other way once every writer is switched: what the clients wrote on
    ElastiCache after the copy passed their keys, unless they wrote the key again since.
    """
    started = time.monotonic()
    baseline = Baseline(baseline_ref, aws)
    with _open(source, source_credentials, target, target_credentials, timeout_s) as (here, there):
        worker = CopyBack(here, there, baseline)
        current = progress if progress is not None else worker.start()
        answer = worker.run(current, started + time_budget_s) if not current.done else current
    records = list(answer.conflict_records)
    if worker.conflicts:
        key = f"{record.prefix}results/{record_name}/conflicts-{answer.counters.invocations:04d}.json"
        with aws_errors_as_transient():
            digest = put_record(record, key, [c.to_json_dict() for c in worker.conflicts], aws)
        records.append(ObjectDigest(key=key, sha256=digest))
    seconds = round(answer.counters.seconds + time.monotonic() - started, 3)
    return answer.model_copy(
        update={
            "conflict_records": records,
            "counters": answer.counters.model_copy(update={"seconds": seconds}),
        }
    )
