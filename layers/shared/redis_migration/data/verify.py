"""Verify a copy: key counts per database, then every key (or a uniform sample) compared.

Per key: its type, a digest of its content and its absolute expiry within a tolerance
(:mod:`redis_migration.data.compare`; the hashing runs inside both servers, only digests travel).
Every key when the source holds at most ``full_check_limit`` keys (1,000,000), otherwise a
uniform random sample of at least ``sample_size`` keys (100,000): a key is in the sample when the
first 32 bits of SHA-1(salt, key) fall below a threshold, so the sample does not depend on SCAN's
order and stays the same across invocations (the salt is in the progress).

Like the copy, a verification runs in invocations of bounded time, resumable by SCAN cursor;
:class:`VerifyProgress` is the output of one and the input of the next. It reads and never
writes: read-only scripts, TYPE/PTTL/range reads and INFO, on both servers. As the copy does, it
sizes each script on the source to ``max_script_ms`` (the SCAN COUNT follows the time the last
script took), records both servers' ``run_id`` and role, starts again from the beginning when one
changed between invocations (a SCAN cursor belongs to one server process; the progress says so in
``restarts``), and refuses a source that is a replica.

A key the source holds with a TTL that is gone from the target by the time it is checked, as its
TTL said, counts as ``expired``, not missing. Keys only the target holds are not looked for key by
key (the counts per database show them; a ``changes`` copy deletes them).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import redis
from pydantic import Field

from redis_migration.data.compare import (
    COMPARE_SCRIPT,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MAX_STRING,
    DEFAULT_TTL_TOLERANCE_MS,
    DIGEST_SCRIPT,
    SAMPLE_SPACE,
    BatchComparison,
    compare_in_chunks,
    key_label,
    parse_comparison,
)
from redis_migration.data.copy import (
    DEFAULT_MAX_SCRIPT_MS,
    MAX_RESTART_NOTES,
    CopyProgress,
    ServerIdentity,
    identity_change,
    keyspace,
    next_scan_count,
    refuse_replica,
    server_identity,
)
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink, RedisUnavailable
from redis_migration.errors import MigrationError
from redis_migration.models import Model

FULL_CHECK_LIMIT = 1_000_000
SAMPLE_SIZE = 100_000
MAX_PROBLEMS = 20
MAX_RECONNECTS = 3

LOG = logging.getLogger(__name__)
ProblemReason = Literal["missing", "type", "value", "ttl", "extra"]


class DataMismatch(MigrationError):
    """The target does not hold what the source holds (the message has the counts and examples)."""


class KeyProblem(Model):
    """One key that is not the same on the target (the first few are named)."""

    db: int
    key: str
    reason: ProblemReason


class VerifySettings(Model):
    """What a verification compares and how it batches."""

    # The most keys one script SCANs; the COUNT adapts below it to max_script_ms.
    batch_keys: Annotated[int, Field(ge=10, le=10_000)] = 1_000
    max_script_ms: Annotated[float, Field(ge=0, le=1000)] = DEFAULT_MAX_SCRIPT_MS
    ttl_tolerance_ms: Annotated[int, Field(ge=0, le=3_600_000)] = DEFAULT_TTL_TOLERANCE_MS
    full_check_limit: Annotated[int, Field(ge=0)] = FULL_CHECK_LIMIT
    sample_size: Annotated[int, Field(ge=1)] = SAMPLE_SIZE
    max_elements: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MAX_ELEMENTS
    max_string: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)] = DEFAULT_MAX_STRING


class VerifyCounters(Model):
    """What a verification found so far (summed over its invocations)."""

    # Keys per database when the verification started (JSON object keys are strings).
    source_keys: dict[str, int] = {}
    target_keys: dict[str, int] = {}
    # Whether only a sample is compared, and the share of keys it takes.
    sampled: bool = False
    sample_fraction: float = 1.0
    scanned: int = 0  # keys SCAN returned on the source
    checked: int = 0  # keys compared
    missing: int = 0
    type_mismatches: int = 0
    value_mismatches: int = 0
    ttl_mismatches: int = 0
    expired: int = 0  # gone from the target as their TTL said
    max_ttl_drift_ms: int = 0
    batches: int = 0
    invocations: int = 0
    seconds: float = 0.0
    # The longest a script held the source, in microseconds (the server's own clock).
    max_script_us: int = 0

    @property
    def mismatched(self) -> int:
        return self.type_mismatches + self.value_mismatches + self.ttl_mismatches

    @property
    def counts_equal(self) -> bool:
        return self.source_keys == self.target_keys

    @property
    def keys_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds else 0.0


class VerifyProgress(Model):
    """Where a verification is: the output of one invocation and the input of the next."""

    databases: list[int]
    db_index: int = 0
    cursor: str = "0"
    # Sampling: a key is compared when SHA-1(salt . key)'s first 32 bits are below the threshold
    # (None: every key).
    salt: str
    threshold: int | None = None
    counters: VerifyCounters = VerifyCounters()
    problems: list[KeyProblem] = []
    done: bool = False
    # The server processes the cursor belongs to; a change restarts the verification.
    source_server: ServerIdentity | None = None
    target_server: ServerIdentity | None = None
    # Why the verification started again from the beginning, one line each (the last few).
    restarts: list[str] = []

    @property
    def ok(self) -> bool:
        """Done, and no key missing or different."""
        c = self.counters
        return self.done and c.missing == 0 and c.mismatched == 0

    def summary(self) -> str:
        """One line for an error message or a log."""
        c = self.counters
        examples = ", ".join(f"{p.reason} {p.key!r} (db {p.db})" for p in self.problems[:5])
        return (
            f"{c.checked} keys checked of {sum(c.source_keys.values())}"
            f"{' (sample)' if c.sampled else ''}: {c.missing} missing, {c.type_mismatches} of another "
            f"type, {c.value_mismatches} with another value, {c.ttl_mismatches} with another TTL "
            f"(largest drift {c.max_ttl_drift_ms} ms), {c.expired} expired"
            + (f"; e.g. {examples}" if examples else "")
        )


def raise_if_mismatched(progress: VerifyProgress) -> None:
    """Raise :class:`DataMismatch` unless the verification is done and found nothing wrong."""
    if not progress.done:
        raise ValueError("the verification has not finished")
    if not progress.ok:
        raise DataMismatch(progress.summary())


@dataclass
class _Tally:
    source_keys: dict[str, int]
    target_keys: dict[str, int]
    sampled: bool
    sample_fraction: float
    scanned: int
    checked: int
    missing: int
    type_mismatches: int
    value_mismatches: int
    ttl_mismatches: int
    expired: int
    max_ttl_drift_ms: int
    batches: int
    invocations: int
    seconds: float
    max_script_us: int


@dataclass
class _Position:
    db_index: int
    cursor: str
    done: bool


class Verifier:
    """One invocation's worth of verifying (see the module doc)."""

    def __init__(
        self,
        source: Callable[[], RedisLink],
        target: Callable[[], RedisLink],
        settings: VerifySettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or VerifySettings()
        self._make = {"scan": source, "keys": source, "target": target}
        self._links: dict[str, RedisLink] = {}
        self._db = 0
        self._clock = clock
        self._batch_seconds = 0.0
        self._count = self.settings.batch_keys

    def _link(self, role: str) -> RedisLink:
        if role not in self._links:
            link = self._make[role]()
            link.select(self._db)
            self._links[role] = link
        return self._links[role]

    def _select(self, db: int) -> None:
        self._db = db
        for link in self._links.values():
            link.select(db)

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> VerifyProgress:
        """The progress of a verification that has not started: counts, databases, sampling."""
        source = keyspace(self._link("scan"))
        target = keyspace(self._link("target"))
        total = sum(source.values())
        s = self.settings
        threshold = None
        fraction = 1.0
        if total > s.full_check_limit:
            fraction = min(1.0, s.sample_size / total)
            threshold = min(SAMPLE_SPACE, int(SAMPLE_SPACE * fraction) + 1)
        counters = VerifyCounters(
            source_keys={str(db): n for db, n in sorted(source.items())},
            target_keys={str(db): n for db, n in sorted(target.items())},
            sampled=threshold is not None,
            sample_fraction=round(fraction, 6),
        )
        return VerifyProgress(
            databases=sorted(source),
            salt=secrets.token_hex(8),
            threshold=threshold,
            counters=counters,
            done=not source,
        )

    def run(self, progress: VerifyProgress | None, deadline: float) -> VerifyProgress:
        """Verify from ``progress`` (None: from the start) until done or ``deadline`` (monotonic)."""
        started = self._clock()
        current = progress if progress is not None else self.start()
        current = self._check_servers(current)
        tally = _Tally(**current.counters.model_dump())
        tally.invocations += 1
        problems = list(current.problems)
        position = _Position(current.db_index, current.cursor, current.done)
        failures = 0
        attempts = 0
        # At least one batch per invocation, whatever the budget: a loop of invocations always ends.
        while not position.done and (attempts == 0 or self._clock() < deadline):
            attempts += 1
            try:
                self._run_databases(current, position, tally, problems, deadline)
                failures = 0
            except (redis.ConnectionError, redis.TimeoutError, RedisUnavailable) as error:
                failures += 1
                self.close()
                if failures > MAX_RECONNECTS:
                    message = f"the verification lost its connections {failures} times: {error}"
                    raise RedisUnavailable(message) from None
                time.sleep(min(0.2 * 2**failures, 2.0))
                # A failover while we were away makes the cursor meaningless: check again.
                checked = self._check_servers(current)
                if checked.restarts != current.restarts:
                    raise RedisUnavailable(
                        f"the verification lost its connection and a server changed meanwhile ({error}); "
                        "the next invocation starts the verification again"
                    ) from None
                continue
            if deadline - self._clock() - 2 * self._batch_seconds <= 0:
                break
        tally.seconds = round(tally.seconds + self._clock() - started, 3)
        return current.model_copy(
            update={
                **dataclasses.asdict(position),
                "counters": VerifyCounters(**dataclasses.asdict(tally)),
                "problems": problems[:MAX_PROBLEMS],
            }
        )

    def _check_servers(self, progress: VerifyProgress) -> VerifyProgress:
        """Record both servers' identity; when one changed, the verification starts again (its
        counts, sample and findings too: they were of another pass). Refuse a replica source."""
        scan, target = self._link("scan"), self._link("target")
        source_now, target_now = server_identity(scan), server_identity(target)
        refuse_replica(source_now, scan)
        invocation = progress.counters.invocations + 1
        notes = [
            note
            for note in (
                identity_change("source", progress.source_server, source_now, invocation),
                identity_change("target", progress.target_server, target_now, invocation),
            )
            if note is not None
        ]
        if notes:
            LOG.warning("verification restarted: %s", "; ".join(notes))
            fresh = self.start()
            kept = progress.counters
            progress = fresh.model_copy(
                update={
                    "counters": fresh.counters.model_copy(
                        update={"invocations": kept.invocations, "seconds": kept.seconds}
                    ),
                    "restarts": [*progress.restarts, *notes][-MAX_RESTART_NOTES:],
                }
            )
        return progress.model_copy(update={"source_server": source_now, "target_server": target_now})

    def _arguments(self, progress: VerifyProgress, cursor: str) -> tuple[object, ...]:
        s = self.settings
        threshold = "all" if progress.threshold is None else progress.threshold
        expiry = self._link("scan").expiry_command
        return ("scan", cursor, self._count, threshold, progress.salt, expiry, s.max_elements, s.max_string)

    def _run_databases(
        self,
        progress: VerifyProgress,
        position: _Position,
        tally: _Tally,
        problems: list[KeyProblem],
        deadline: float,
    ) -> None:
        s = self.settings
        while position.db_index < len(progress.databases):
            db = progress.databases[position.db_index]
            self._select(db)
            scan, target = self._link("scan"), self._link("target")
            scan.send_script(DIGEST_SCRIPT, *self._arguments(progress, position.cursor))
            while True:
                began = self._clock()
                cursor_raw, packed, scanned, _taken, script_us = scan.receive_script()
                cursor = cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)
                self._count = next_scan_count(
                    self._count, int(scanned), int(script_us), s.max_script_ms, s.batch_keys
                )
                tally.max_script_us = max(tally.max_script_us, int(script_us))
                limit = max(0, MAX_PROBLEMS - len(problems)) or 1
                expiry = target.expiry_command
                compare_arguments = (packed, s.ttl_tolerance_ms, limit, expiry, s.max_elements, s.max_string)
                target.send_script(COMPARE_SCRIPT, *compare_arguments)
                more = cursor != "0" and deadline - self._clock() - 2 * self._batch_seconds > 0
                if more:
                    scan.send_script(DIGEST_SCRIPT, *self._arguments(progress, cursor))
                try:
                    comparison = parse_comparison(target.receive_script())
                    rechecked = [(key, *self._recheck(key)) for key in comparison.recheck]
                except BaseException:
                    if more:
                        self.close()  # a script is in flight on the scan link
                    raise
                tally.scanned += int(scanned)
                _count(tally, problems, db, comparison, rechecked)
                tally.batches += 1
                position.cursor = cursor
                self._batch_seconds = self._clock() - began
                if cursor == "0":
                    break
                if not more:
                    return
            position.db_index += 1
            position.cursor = "0"
        position.done = True

    def _recheck(self, key: bytes) -> tuple[str | None, int]:
        """(reason the key differs or None, TTL drift) for a key read in chunks on both sides."""
        return compare_in_chunks(
            self._link("keys"), self._link("target"), key, self.settings.ttl_tolerance_ms
        )


_TALLY_FIELD = {
    "missing": "missing",
    "type": "type_mismatches",
    "value": "value_mismatches",
    "ttl": "ttl_mismatches",
}


def _count(
    tally: _Tally,
    problems: list[KeyProblem],
    db: int,
    comparison: BatchComparison,
    rechecked: list[tuple[bytes, str | None, int]],
) -> None:
    """Add one batch's comparison (and its keys read in chunks) to the tally."""
    tally.checked += comparison.checked + len(rechecked)
    tally.missing += comparison.missing
    tally.type_mismatches += comparison.type_mismatches
    tally.value_mismatches += comparison.value_mismatches
    tally.ttl_mismatches += comparison.ttl_mismatches
    tally.expired += comparison.expired
    tally.max_ttl_drift_ms = max(tally.max_ttl_drift_ms, comparison.max_ttl_drift_ms)
    named = list(comparison.differences)
    for key, reason, drift in rechecked:
        tally.max_ttl_drift_ms = max(tally.max_ttl_drift_ms, drift)
        if reason is not None:
            field = _TALLY_FIELD.get(reason, "value_mismatches")
            setattr(tally, field, getattr(tally, field) + 1)
            named.append((key, reason))
    for key, reason in named:
        problems.append(KeyProblem.model_validate({"db": db, "key": key_label(key), "reason": reason}))


def verify_data(
    source: RedisEndpoint,
    source_credentials: Credentials,
    target: RedisEndpoint,
    target_credentials: Credentials,
    *,
    progress: VerifyProgress | None = None,
    time_budget_s: float = 60.0,
    settings: VerifySettings | None = None,
    timeout_s: float = 30.0,
) -> VerifyProgress:
    """One invocation of a verification (see the module doc); answers the progress to continue."""
    deadline = time.monotonic() + time_budget_s
    verifier = Verifier(
        lambda: RedisLink(source, source_credentials, timeout_s=timeout_s).connect(),
        lambda: RedisLink(target, target_credentials, timeout_s=timeout_s).connect(),
        settings,
    )
    with verifier:
        return verifier.run(progress, deadline)


class DataSummary(Model):
    """What a run's data steps did, for the execution output and the report (issue 11's ``data``)."""

    mode: Literal["none", "warm", "consistent"]
    source_keys: int
    copied: int
    verified: int
    missing: int
    mismatched: int
    max_ttl_drift_ms: int
    copy_seconds: float
    keys_per_second: float
    freeze_seconds: float | None = None
    # Keys that changed after being copied (warm mode: the verification is a report, not a gate).
    changed_after_copy: int | None = None
    # Passes that started again because a server process changed (a failover, a replacement).
    restarts: list[str] = []


def summarize(
    mode: Literal["none", "warm", "consistent"],
    copy: CopyProgress | None,
    verification: VerifyProgress | None,
    *,
    freeze_seconds: float | None = None,
) -> DataSummary:
    """The data summary of a run from its last copy and verification progress (either may be
    absent: mode ``none``, or a run that copied nothing)."""
    counters = verification.counters if verification is not None else VerifyCounters()
    copied = copy.counters if copy is not None else None
    mismatched = counters.missing + counters.mismatched
    return DataSummary(
        mode=mode,
        source_keys=sum(counters.source_keys.values()),
        copied=copied.restored if copied else 0,
        verified=counters.checked,
        missing=counters.missing,
        mismatched=counters.mismatched,
        max_ttl_drift_ms=counters.max_ttl_drift_ms,
        copy_seconds=copied.seconds if copied else 0.0,
        keys_per_second=round(copied.keys_per_second, 1) if copied else 0.0,
        freeze_seconds=freeze_seconds,
        changed_after_copy=mismatched if mode == "warm" else None,
        restarts=[
            *(f"copy: {note}" for note in (copy.restarts if copy is not None else [])),
            *(f"verification: {note}" for note in (verification.restarts if verification else [])),
        ],
    )
