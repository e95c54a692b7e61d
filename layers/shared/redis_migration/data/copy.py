"""Copy a Redis's data to another: SCAN, DUMP with the absolute expiry, RESTORE ... ABSTTL REPLACE.

The copy runs in invocations of bounded time (a Lambda function called in a Step Functions loop):
each one takes the previous :class:`CopyProgress` (None at first), works until its deadline and
answers the new progress; the copy is done when every database's SCAN cursor came back to 0.
A SCAN cursor stays valid across connections, so an invocation resumes exactly where the previous
one stopped (a key may be copied twice, never skipped: SCAN returns every key present throughout
at least once, and ``RESTORE ... REPLACE`` is idempotent).

How a batch moves (``lua/copy_batch.lua``): one EVAL on the source SCANs ``batch_keys`` keys and
answers, for each, the RESP-encoded ``RESTORE key <absolute expiry ms> <DUMP> REPLACE ABSTTL``,
all in one string; Python writes that string to the target as it is and counts the ``+OK``
replies. The next batch's EVAL is sent before the target's replies are read, so the source dumps
batch N+1 while the target restores batch N. Python touches no key on the way (hence the rate).
Memory stays bounded whatever the key count: a batch stops dumping past ``max_batch_bytes`` (the
rest of its keys are named and copied in follow-up batches), and a key whose size is above
``max_payload_bytes`` is copied alone (MULTI: TIME, PTTL, DUMP; then RESTORE), holding one
payload at a time.

The source is a production primary: while a script runs, every client of it waits. So the script
reads each key's size (``MEMORY USAGE``, a few sampled elements) *before* its DUMP and only names
a large key (it is DUMPed alone, outside any script); it stops dumping past ``max_script_ms`` and
names the keys it did not reach; and the SCAN COUNT adapts, batch after batch, so that a script
takes about half that budget. A key larger than the copy function can hold (``max_key_bytes``,
from the function's memory) is refused by name before its DUMP (:class:`KeyTooLargeToCopy`), never
an out-of-memory kill half-way. A source that stops answering while a script of ours may still run
is waited for (a PING answers only once the script has ended) before anything is sent again.

A SCAN cursor belongs to one server process (its hash seed is random per process): after a
failover, a node replacement or a restart, a resumed cursor skips keys silently. Each invocation
records both servers' ``run_id`` and role in the progress; when either changed since the last
invocation (or since a reconnection), the pass starts again from the beginning and the progress
says so (``restarts``). A source that answers ``role:slave`` (a replica, the reader endpoint) is
refused: :class:`SourceIsReplica`.

Two modes:

- ``full``: every key of the source, over whatever the target holds (keys only the target holds
  stay). For the copy before a cutover, while clients keep writing ("warm"), or under a freeze.
- ``changes``: what differs. Each batch's keys are compared on both servers (type, content
  digest, expiry: :mod:`redis_migration.data.compare`), those that differ are copied again (or
  deleted when the source no longer has them); then a pass over the target deletes the keys the
  source does not hold. After a ``full`` copy made while clients were writing, this is what makes
  the target equal to a frozen source, in a time that depends on the key count, not the data size
  (no bulk transfer). Chosen over keyspace notifications, which need a custom ElastiCache
  parameter group (``notify-keyspace-events``), lose every event while no subscriber is connected
  (between two invocations), and cannot tell what changed before they were switched on.

The reverse copy (after a cutover, back to ElastiCache for a rollback that loses no write) is the
same call with the endpoints swapped, in ``changes`` mode.

Only read commands and read-only scripts reach the source; only RESTORE, DEL, SELECT and
read-only scripts reach the target: nothing ElastiCache restricts is ever sent.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import redis
from pydantic import Field
from redis.exceptions import ResponseError

from redis_migration.data.compare import (
    COMPARE_SCRIPT,
    DEFAULT_MAX_ELEMENTS,
    DEFAULT_MAX_STRING,
    DEFAULT_TTL_TOLERANCE_MS,
    DIGEST_SCRIPT,
    KEYS_ABSENT_SCRIPT,
    SCAN_KEYS_SCRIPT,
    compare_in_chunks,
    key_label,
    parse_comparison,
)
from redis_migration.data.link import (
    Credentials,
    RedisAccessDenied,
    RedisEndpoint,
    RedisLink,
    RedisUnavailable,
    Script,
    SimpleReplies,
    pack_command,
)
from redis_migration.errors import MigrationError
from redis_migration.models import Model

COPY_SCRIPT = Script.load("copy_batch.lua")
# The most keys one script SCANs; the COUNT adapts below it to the time budget (see _next_count).
DEFAULT_BATCH_KEYS = 500
# A key above this size (MEMORY USAGE, read before any DUMP) is copied alone, outside a script.
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024
# How long one script may hold the source: a client of ElastiCache waits at most about this long.
DEFAULT_MAX_SCRIPT_MS = 1.0
# The SCAN COUNT aims at this share of the time budget (a SCAN's key count varies around COUNT).
_SCRIPT_TARGET_SHARE = 0.5
MIN_BATCH_KEYS = 10
# What the copy function keeps for itself (the interpreter, redis-py, a batch in flight) and how
# many times a payload is held at once (redis-py's read buffer, the bytes, the socket's copy).
FUNCTION_BASELINE_MB = 160
PAYLOAD_COPIES = 3
# How long a source that stopped answering is waited for (a script of ours may still run there).
SOURCE_BUSY_WAIT_S = 60.0
MAX_RESTART_NOTES = 10
# Consecutive connection failures tolerated inside one invocation before giving up (the state
# machine then retries the invocation, which resumes from its input).
MAX_RECONNECTS = 3
_RESTORE_TRAILER = b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"

CopyMode = Literal["full", "changes"]
LOG = logging.getLogger(__name__)


class DataCopyFailed(MigrationError):
    """The target refused what the copy sent (the message names the key and the reply)."""


class TargetOutOfMemory(DataCopyFailed):
    """The target answered OOM: its maxmemory is too small for the data (nothing was evicted:
    with an eviction policy the target would have dropped keys instead, hence the preflight)."""


class DumpVersionUnsupported(DataCopyFailed):
    """The target cannot read the source's DUMP payloads (a newer RDB version)."""


class KeyTooLargeToCopy(DataCopyFailed):
    """A key is larger than the copy function can hold in memory (named with its size), found
    before its DUMP: raise the function's memory (MaxDataFunctionMemory) or shrink the key."""


class SourceIsReplica(DataCopyFailed):
    """The source answers ``role:slave``: a replica (a node or reader endpoint), whose keys lag
    the primary's and whose SCAN would not see a write made there. Name the primary endpoint."""


def max_key_bytes_for(memory_mb: int) -> int:
    """The largest key a copy function of ``memory_mb`` MB can DUMP and RESTORE whole."""
    return max(0, (memory_mb - FUNCTION_BASELINE_MB) * 1024 * 1024 // PAYLOAD_COPIES)


class ServerIdentity(Model):
    """Which server process answered: its ``run_id`` (new at every start, failover or replacement)
    and its role (``master`` or ``slave``)."""

    run_id: str
    role: str


class CopyCounters(Model):
    """What a copy did so far (summed over its invocations)."""

    scanned: int = 0  # keys SCAN returned on the source (a key may come twice)
    restored: int = 0  # RESTOREs the target acknowledged
    deleted: int = 0  # keys deleted on the target because the source no longer holds them
    gone: int = 0  # keys that vanished (deleted, expired) between SCAN and DUMP
    large: int = 0  # keys copied one at a time (payload above max_payload_bytes)
    deferred: int = 0  # keys a full batch (max_batch_bytes, max_script_ms) left to a follow-up batch
    compared: int = 0  # changes mode: keys compared on both servers
    changed: int = 0  # changes mode: keys found different and copied (or deleted) again
    extra: int = 0  # changes mode: keys only the target held, deleted
    payload_bytes: int = 0
    batches: int = 0
    invocations: int = 0
    seconds: float = 0.0
    # The longest a script held the source, in microseconds (the server's own clock).
    max_script_us: int = 0

    @property
    def keys_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds else 0.0


class CopyProgress(Model):
    """Where a copy is: the output of one invocation and the input of the next.

    ``cursor`` is a string: SCAN cursors go up to 2^64, beyond what a JSON number keeps exactly.
    """

    mode: CopyMode
    databases: list[int]
    db_index: int = 0
    cursor: str = "0"
    # changes mode: "copy" compares and copies the source's keys; "extras" deletes the target's
    # keys the source does not hold.
    phase: Literal["copy", "extras"] = "copy"
    counters: CopyCounters = CopyCounters()
    done: bool = False
    # The server processes the cursors belong to; a change restarts the pass (see the module doc).
    source_server: ServerIdentity | None = None
    target_server: ServerIdentity | None = None
    # Why the pass started again from the beginning, one line each (the last few).
    restarts: list[str] = []


class CopySettings(Model):
    """How a copy batches its work (the defaults suit ElastiCache and a 2-core target)."""

    batch_keys: Annotated[int, Field(ge=10, le=10_000)] = DEFAULT_BATCH_KEYS
    max_payload_bytes: Annotated[int, Field(ge=1024, le=512 * 1024 * 1024)] = DEFAULT_MAX_PAYLOAD_BYTES
    max_batch_bytes: Annotated[int, Field(ge=64 * 1024, le=256 * 1024 * 1024)] = DEFAULT_MAX_BATCH_BYTES
    # How long one script may hold the source (0: no time budget, only the key and byte bounds).
    max_script_ms: Annotated[float, Field(ge=0, le=1000)] = DEFAULT_MAX_SCRIPT_MS
    # The largest key this copy may hold (None: as the function's memory allows, or no limit).
    max_key_bytes: Annotated[int | None, Field(ge=1024)] = None
    ttl_tolerance_ms: Annotated[int, Field(ge=0, le=3_600_000)] = DEFAULT_TTL_TOLERANCE_MS
    max_elements: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MAX_ELEMENTS
    max_string: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)] = DEFAULT_MAX_STRING


@dataclass
class _Tally:
    """CopyCounters while an invocation counts (models are immutable)."""

    scanned: int = 0
    restored: int = 0
    deleted: int = 0
    gone: int = 0
    large: int = 0
    deferred: int = 0
    compared: int = 0
    changed: int = 0
    extra: int = 0
    payload_bytes: int = 0
    batches: int = 0
    invocations: int = 0
    seconds: float = 0.0
    max_script_us: int = 0


@dataclass
class _Position:
    """CopyProgress without its counters, while an invocation moves it."""

    mode: CopyMode
    databases: list[int]
    db_index: int
    cursor: str
    phase: Literal["copy", "extras"]
    done: bool
    source_server: ServerIdentity | None
    target_server: ServerIdentity | None
    restarts: list[str]


class _Links:
    """The connections a copy uses, made on first use and all remade after a failure."""

    def __init__(self, make: dict[str, Callable[[], RedisLink]]) -> None:
        self._make = make
        self._links: dict[str, RedisLink] = {}
        self._db = 0

    def __getitem__(self, role: str) -> RedisLink:
        if role not in self._links:
            link = self._make[role]()
            link.select(self._db)
            self._links[role] = link
        return self._links[role]

    def select(self, db: int) -> None:
        self._db = db
        for link in self._links.values():
            link.select(db)

    def reset(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()

    def close(self) -> None:
        self.reset()


def keyspace(link: RedisLink) -> dict[int, int]:
    """Keys per database, from INFO keyspace (databases without keys are absent)."""
    info = link.command("INFO", "keyspace")
    text = info.decode() if isinstance(info, bytes) else str(info)
    counts: dict[int, int] = {}
    for line in text.splitlines():
        if line.startswith("db") and ":keys=" in line:
            name, _, rest = line.partition(":")
            counts[int(name[2:])] = int(rest.split(",", 1)[0].removeprefix("keys="))
    return counts


def _info_field(link: RedisLink, section: str, name: str) -> str:
    info = link.command("INFO", section)
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return ""


def server_identity(link: RedisLink) -> ServerIdentity:
    """The server process behind ``link``: INFO server's ``run_id``, INFO replication's ``role``."""
    return ServerIdentity(
        run_id=_info_field(link, "server", "run_id") or "unknown",
        role=_info_field(link, "replication", "role") or "unknown",
    )


def refuse_replica(identity: ServerIdentity, link: RedisLink) -> None:
    """Raise :class:`SourceIsReplica` when the source is not a primary."""
    if identity.role not in ("master", "unknown"):
        where = f"{link.endpoint.host}:{link.endpoint.port}"
        raise SourceIsReplica(
            f"the source {where} answers role:{identity.role}: a replica (a replica's node endpoint or "
            "the reader endpoint), whose data lags the primary's. Give the primary endpoint"
        )


def identity_change(
    role: str, before: ServerIdentity | None, now: ServerIdentity, invocation: int
) -> str | None:
    """A line saying why the pass restarts, when ``role``'s server process is not the one before."""
    if before is None or before.run_id == now.run_id:
        return None
    return (
        f"invocation {invocation}: the {role}'s server process changed (run_id {before.run_id[:12]}, "
        f"{before.role} -> {now.run_id[:12]}, {now.role}: a failover, a node replacement or a restart); "
        "a SCAN cursor belongs to one process, so the pass started again from the beginning"
    )


def next_scan_count(count: int, keys: int, script_us: int, max_script_ms: float, most: int) -> int:
    """The SCAN COUNT of the next script: aimed at half of ``max_script_ms`` from what the last
    one took for ``keys`` keys (the source's own clock); at most doubled or halved at a time
    (SCAN's key counts vary), between MIN_BATCH_KEYS and ``most``. No budget: ``most``."""
    budget_us = max_script_ms * 1000
    if budget_us <= 0:
        return most
    if keys <= 0:
        return count
    per_key = max(script_us, 1) / keys
    wanted = int(budget_us * _SCRIPT_TARGET_SHARE / per_key)
    wanted = max(count // 2, min(count * 2, wanted))
    return max(MIN_BATCH_KEYS, min(most, wanted))


def _key_in_command(blob: bytes, index: int) -> bytes:
    """The key (second argument) of the ``index``-th RESP command in ``blob``."""
    position = 0
    for current in range(index + 1):
        if blob[position : position + 1] != b"*":
            return b"?"
        end = blob.index(b"\r\n", position)
        arguments = int(blob[position + 1 : end])
        position = end + 2
        key = b"?"
        for argument in range(arguments):
            end = blob.index(b"\r\n", position)
            length = int(blob[position + 1 : end])
            value = blob[end + 2 : end + 2 + length]
            if current == index and argument == 1:
                key = value
            position = end + 2 + length + 2
        if current == index:
            return key
    return b"?"


def raise_refusal(replies: SimpleReplies, blob: bytes | None, single_key: bytes | None = None) -> None:
    """Raise the named error of the first error reply (the key named)."""
    if not replies.errors:
        return
    index, message = replies.errors[0]
    key = single_key if single_key is not None else (_key_in_command(blob, index) if blob else b"?")
    more = f" (and {len(replies.errors) - 1} more in the batch)" if len(replies.errors) > 1 else ""
    detail = f"key {key_label(key)!r}: {message}{more}"
    if message.startswith("OOM"):
        raise TargetOutOfMemory(detail)
    if "payload version" in message:
        raise DumpVersionUnsupported(detail)
    if message.startswith(("NOPERM", "NOAUTH", "WRONGPASS")):
        raise RedisAccessDenied(detail)
    raise DataCopyFailed(detail)


class Copier:
    """One invocation's worth of copying (see the module doc). ``source`` and ``target`` make
    links; the copier makes at most two of each and closes them in :meth:`close`.
    ``memory_mb``: the copy function's memory, which bounds the largest key it may hold."""

    def __init__(
        self,
        source: Callable[[], RedisLink],
        target: Callable[[], RedisLink],
        settings: CopySettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        memory_mb: int | None = None,
    ) -> None:
        self.settings = settings or CopySettings()
        self._clock = clock
        # scan: the SCAN stream (one script in flight); keys: keys named by a batch;
        # raw: the RESTORE stream; commands: the target's scripts and reads.
        self._links = _Links({"scan": source, "keys": source, "raw": target, "commands": target})
        self._make_source = source
        self._batch_seconds = 0.0
        self._count = self.settings.batch_keys
        self._digest_count = self.settings.batch_keys
        self.max_key_bytes = self.settings.max_key_bytes
        if self.max_key_bytes is None and memory_mb is not None:
            self.max_key_bytes = max_key_bytes_for(memory_mb)
        self._identities_checked = False

    def close(self) -> None:
        self._links.close()

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keys named by the caller (the copy back) -----------------------------------------------

    def use_database(self, db: int) -> None:
        """Work in database ``db`` on both servers from now on."""
        self._links.select(db)

    def copy_keys(self, keys: list[bytes]) -> tuple[int, int]:
        """Copy ``keys`` of the current database again, each as the source holds it now (one the
        source no longer holds is deleted on the target); answer (restored, deleted)."""
        tally = _Tally()
        self._copy_named(list(keys), [], tally)
        return tally.restored, tally.deleted

    def delete_keys(self, keys: list[bytes]) -> int:
        """Delete ``keys`` of the current database on the target; answer how many it held."""
        if not keys:
            return 0
        raw = self._links["raw"]
        raw.send_raw(pack_command("DEL", *keys))
        replies = raw.read_simple_replies(1)
        raise_refusal(replies, None, keys[0])
        return replies.integer_sum

    # -- the invocation ------------------------------------------------------------------------

    def start(self, mode: CopyMode) -> CopyProgress:
        """The progress of a copy that has not started: the databases to go through."""
        databases = set(keyspace(self._links["scan"]))
        if mode == "changes":
            # Keys in a database the source has none in are extras too.
            databases |= set(keyspace(self._links["commands"]))
        return CopyProgress(mode=mode, databases=sorted(databases), done=not databases)

    def run(self, progress: CopyProgress | None, mode: CopyMode, deadline: float) -> CopyProgress:
        """Copy from ``progress`` (None: from the start) until done or ``deadline`` (monotonic);
        answer the new progress. Connection failures are retried (bounded), resuming from the
        last batch completed; a source that timed out is first waited for."""
        started = self._clock()
        if progress is None:
            # A replica is refused before anything is read from it.
            scan = self._links["scan"]
            refuse_replica(server_identity(scan), scan)
        current = progress if progress is not None else self.start(mode)
        if current.mode != mode:
            raise ValueError(f"the progress is of a {current.mode} copy, not {mode}")
        tally = _Tally(**current.counters.model_dump())
        tally.invocations += 1
        position = _Position(
            **current.model_dump(exclude={"counters", "source_server", "target_server", "restarts"}),
            source_server=current.source_server,
            target_server=current.target_server,
            restarts=list(current.restarts),
        )
        failures = 0
        attempts = 0
        # At least one batch per invocation, whatever the budget: a loop of invocations always ends.
        while not position.done and (attempts == 0 or self._clock() < deadline):
            attempts += 1
            try:
                if not self._identities_checked:
                    self._check_servers(position, tally.invocations)
                self._run_databases(position, tally, deadline)
                failures = 0
            except (redis.ConnectionError, redis.TimeoutError, RedisUnavailable) as error:
                # Resume from the last batch completed, on new connections (bounded), and only
                # once the servers are checked again (a failover changes the cursor's meaning).
                failures += 1
                self._links.reset()
                self._identities_checked = False
                if failures > MAX_RECONNECTS:
                    message = f"the copy lost its connections {failures} times: {error}"
                    raise RedisUnavailable(message) from None
                if isinstance(error, redis.TimeoutError):
                    # A script of ours may still hold the source: never send the batch again
                    # before the source answers (a PING waits behind the running script).
                    self._wait_for_source(error)
                else:
                    time.sleep(min(0.2 * 2**failures, 2.0))
                continue
            if self._time_left(deadline) <= 0:
                break
        tally.seconds = round(tally.seconds + self._clock() - started, 3)
        counters = CopyCounters(**dataclasses.asdict(tally))
        fields = {f.name: getattr(position, f.name) for f in dataclasses.fields(position)}
        fields["restarts"] = position.restarts[-MAX_RESTART_NOTES:]
        return CopyProgress(**fields, counters=counters)

    def _check_servers(self, position: _Position, invocation: int) -> None:
        """Record both servers' identity; restart the pass when one changed; refuse a replica."""
        scan, commands = self._links["scan"], self._links["commands"]
        source, target = server_identity(scan), server_identity(commands)
        refuse_replica(source, scan)
        notes = [
            note
            for note in (
                identity_change("source", position.source_server, source, invocation),
                identity_change("target", position.target_server, target, invocation),
            )
            if note is not None
        ]
        if notes:
            fresh = self.start(position.mode)
            position.databases, position.done = list(fresh.databases), fresh.done
            position.db_index, position.cursor, position.phase = 0, "0", "copy"
            position.restarts.extend(notes)
            LOG.warning("copy pass restarted: %s", "; ".join(notes))
        position.source_server, position.target_server = source, target
        self._identities_checked = True

    def _wait_for_source(self, error: Exception) -> None:
        """Wait (bounded) until the source answers a PING on a new connection: a script still
        running there delays it until the script ends, so nothing is sent twice meanwhile."""
        deadline = time.monotonic() + SOURCE_BUSY_WAIT_S
        while True:
            try:
                probe = self._make_source()
                try:
                    probe.command("PING")
                    return
                finally:
                    probe.close()
            except ResponseError as busy:  # BUSY: a script past the server's busy threshold
                reason: Exception = busy
            except (redis.ConnectionError, redis.TimeoutError, RedisUnavailable) as failed:
                reason = failed
            if time.monotonic() > deadline:
                raise RedisUnavailable(
                    f"the source did not answer within {SOURCE_BUSY_WAIT_S:.0f} s after a timeout ({error}; "
                    f"then {reason}): not sending the batch again while it may still be running"
                ) from None
            time.sleep(1.0)

    def _time_left(self, deadline: float) -> float:
        return deadline - self._clock() - 2 * self._batch_seconds

    def _run_databases(self, position: _Position, tally: _Tally, deadline: float) -> None:
        while position.db_index < len(position.databases):
            self._links.select(position.databases[position.db_index])
            if position.phase == "copy":
                if position.mode == "full":
                    finished = self._copy_scan(position, tally, deadline)
                else:
                    finished = self._compare_scan(position, tally, deadline)
                if finished and position.mode == "changes":
                    position.phase, position.cursor = "extras", "0"
                    continue
            else:
                finished = self._extras_scan(position, tally, deadline)
            if not finished:
                return
            position.db_index += 1
            position.phase, position.cursor = "copy", "0"
        position.done = True

    # -- full: the source's keys, batch after batch --------------------------------------------

    def _bounds(self) -> tuple[Any, ...]:
        """The script's size and time bounds (ARGV[4..7])."""
        s = self.settings
        budget_us = int(s.max_script_ms * 1000)
        return (s.max_payload_bytes, s.max_batch_bytes, self._links["scan"].expiry_command, budget_us)

    def _copy_arguments(self, cursor: str) -> tuple[Any, ...]:
        payload, batch, expiry, budget_us = self._bounds()
        return ("scan", cursor, self._count, payload, batch, expiry, budget_us)

    def _next_count(self, keys: int, script_us: int) -> None:
        """Aim the next SCAN COUNT at half the time budget, from what this script took."""
        s = self.settings
        self._count = next_scan_count(self._count, keys, script_us, s.max_script_ms, s.batch_keys)

    def _copy_scan(self, position: _Position, tally: _Tally, deadline: float) -> bool:
        scan, raw = self._links["scan"], self._links["raw"]
        scan.send_script(COPY_SCRIPT, *self._copy_arguments(position.cursor))
        while True:
            began = self._clock()
            reply = scan.receive_script()
            cursor = _text(reply[0])
            blob, commands = bytes(reply[1]), int(reply[2])
            script_us = int(reply[7])
            seen = commands + len(reply[4]) + int(reply[3])
            self._next_count(seen, script_us)
            if commands:
                raw.send_raw(blob)
            more = cursor != "0" and self._time_left(deadline) > 0
            if more:
                # Dumped by the source while the target restores this batch.
                scan.send_script(COPY_SCRIPT, *self._copy_arguments(cursor))
            try:
                replies = raw.read_simple_replies(commands)
                raise_refusal(replies, blob)
                large = list(zip([bytes(k) for k in reply[4]], [int(v) for v in reply[8]], strict=True))
                self._copy_named([bytes(k) for k in reply[5]], large, tally)
            except BaseException:
                if more:
                    self._links.reset()  # a script is in flight: this connection cannot be reused
                raise
            tally.scanned += len(reply[4]) + len(reply[5]) + commands + int(reply[3])
            tally.deferred += len(reply[5])
            tally.restored += replies.ok
            tally.gone += int(reply[3])
            tally.payload_bytes += int(reply[6])
            tally.batches += 1
            tally.max_script_us = max(tally.max_script_us, script_us)
            position.cursor = cursor
            self._batch_seconds = self._clock() - began
            if cursor == "0":
                return True
            if not more:
                return False

    def _copy_named(self, deferred: list[bytes], large: list[tuple[bytes, int]], tally: _Tally) -> None:
        """Copy keys a batch named: deferred ones (the batch was full) in further batches, large
        ones (with their size) one at a time. A key the source no longer holds is deleted on the
        target."""
        keys, raw = self._links["keys"], self._links["raw"]
        queue = list(deferred)
        large = list(large)
        while queue:
            chunk, queue = queue[: self._count], queue[self._count :]
            payload, batch, expiry, budget_us = self._bounds()
            reply = keys.script(COPY_SCRIPT, "keys", "", 0, payload, batch, expiry, budget_us, *chunk)
            blob, commands = bytes(reply[1]), int(reply[2])
            if commands:
                raw.send_raw(blob)
                replies = raw.read_simple_replies(commands)
                raise_refusal(replies, blob)
                tally.restored += replies.ok
                tally.deleted += replies.integer_sum
            tally.payload_bytes += int(reply[6])
            tally.max_script_us = max(tally.max_script_us, int(reply[7]))
            large += list(zip([bytes(k) for k in reply[4]], [int(v) for v in reply[8]], strict=True))
            queue = [bytes(k) for k in reply[5]] + queue
            tally.deferred += len(reply[5])
        for key, size in large:
            self._copy_large(key, size, tally)

    def _copy_large(self, key: bytes, size: int, tally: _Tally) -> None:
        """DUMP one large key alone and RESTORE it; refuse it first when the function could not
        hold it (``size``: its MEMORY USAGE, read before any DUMP)."""
        if self.max_key_bytes is not None and size > self.max_key_bytes:
            raise KeyTooLargeToCopy(
                f"key {key_label(key)!r} uses {size / 1024**2:,.1f} MiB on the source; the copy function "
                f"can hold a key of {self.max_key_bytes / 1024**2:,.1f} MiB at most (raise "
                "MaxDataFunctionMemory, or split or delete the key): nothing of it was read"
            )
        keys, raw = self._links["keys"], self._links["raw"]
        exact = keys.expiry_command == "pexpiretime"
        for command in (
            ("MULTI",),
            ("TIME",),
            ("PEXPIRETIME" if exact else "PTTL", key),
            ("DUMP", key),
            ("EXEC",),
        ):
            keys.send(*command)
        for _ in range(4):
            keys.receive()  # OK, then QUEUED three times
        (seconds, micros), ttl, payload = keys.receive()
        ttl = int(ttl)
        if payload is None or ttl == -2:
            raw.send_raw(pack_command("DEL", key))
            replies = raw.read_simple_replies(1)
            raise_refusal(replies, None, key)
            tally.deleted += replies.integer_sum
            tally.gone += 1
            return
        now = int(seconds) * 1000 + int(micros) // 1000
        # RESTORE's 0 is "no expiry"; PEXPIRETIME answers the absolute expiry, PTTL the time left.
        expiry = 0 if ttl < 0 else (ttl if exact else now + ttl)
        expiry_text = str(expiry).encode()
        header = b"*6\r\n$7\r\nRESTORE\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n" % (
            len(key),
            key,
            len(expiry_text),
            expiry_text,
            len(payload),
        )
        # Three writes: the payload is never copied into a bigger buffer.
        raw.send_raw([header, payload, _RESTORE_TRAILER])
        replies = raw.read_simple_replies(1)
        raise_refusal(replies, None, key)
        tally.restored += replies.ok
        tally.large += 1
        tally.payload_bytes += len(payload)

    # -- changes: compare every key, copy what differs, delete what only the target holds ------

    def _digest_arguments(self, cursor: str) -> tuple[Any, ...]:
        s = self.settings
        expiry = self._links["scan"].expiry_command
        return ("scan", cursor, self._digest_count, "all", "", expiry, s.max_elements, s.max_string)

    def _compare_scan(self, position: _Position, tally: _Tally, deadline: float) -> bool:
        scan, commands = self._links["scan"], self._links["commands"]
        s = self.settings
        scan.send_script(DIGEST_SCRIPT, *self._digest_arguments(position.cursor))
        while True:
            began = self._clock()
            cursor_raw, packed, scanned, _taken, script_us = scan.receive_script()
            cursor = _text(cursor_raw)
            self._digest_count = next_scan_count(
                self._digest_count, int(scanned), int(script_us), self.settings.max_script_ms, s.batch_keys
            )
            tally.max_script_us = max(tally.max_script_us, int(script_us))
            compare = (packed, s.ttl_tolerance_ms, 0, commands.expiry_command, s.max_elements, s.max_string)
            commands.send_script(COMPARE_SCRIPT, *compare)
            more = cursor != "0" and self._time_left(deadline) > 0
            if more:
                scan.send_script(DIGEST_SCRIPT, *self._digest_arguments(cursor))
            try:
                comparison = parse_comparison(commands.receive_script())
                changed = [key for key, _ in comparison.differences]
                changed += [key for key in comparison.recheck if self._differs(key)]
                if changed:
                    self._copy_named(changed, [], tally)
            except BaseException:
                if more:
                    self._links.reset()
                raise
            tally.scanned += int(scanned)
            tally.compared += comparison.checked + len(comparison.recheck)
            tally.changed += len(changed)
            tally.batches += 1
            position.cursor = cursor
            self._batch_seconds = self._clock() - began
            if cursor == "0":
                return True
            if not more:
                return False

    def _differs(self, key: bytes) -> bool:
        keys, commands = self._links["keys"], self._links["commands"]
        return compare_in_chunks(keys, commands, key, self.settings.ttl_tolerance_ms)[0] is not None

    def _extras_scan(self, position: _Position, tally: _Tally, deadline: float) -> bool:
        commands, keys, raw = self._links["commands"], self._links["keys"], self._links["raw"]
        while True:
            began = self._clock()
            batch = self.settings.batch_keys
            cursor_raw, packed, _count = commands.script(SCAN_KEYS_SCRIPT, position.cursor, batch)
            absent = [bytes(key) for key in keys.script(KEYS_ABSENT_SCRIPT, packed)]
            if absent:
                raw.send_raw(pack_command("DEL", *absent))
                replies = raw.read_simple_replies(1)
                raise_refusal(replies, None, absent[0])
                tally.extra += replies.integer_sum
            tally.batches += 1
            position.cursor = _text(cursor_raw)
            self._batch_seconds = self._clock() - began
            if position.cursor == "0":
                return True
            if self._time_left(deadline) <= 0:
                return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def open_copier(
    source: RedisEndpoint,
    source_credentials: Credentials,
    target: RedisEndpoint,
    target_credentials: Credentials,
    settings: CopySettings | None = None,
    *,
    timeout_s: float = 30.0,
    memory_mb: int | None = None,
) -> Iterator[Copier]:
    """A :class:`Copier` between two endpoints; its connections are closed on exit."""
    with ExitStack() as stack:
        copier = Copier(
            lambda: RedisLink(source, source_credentials, timeout_s=timeout_s).connect(),
            lambda: RedisLink(target, target_credentials, timeout_s=timeout_s).connect(),
            settings,
            memory_mb=memory_mb,
        )
        stack.callback(copier.close)
        yield copier


def copy_data(
    source: RedisEndpoint,
    source_credentials: Credentials,
    target: RedisEndpoint,
    target_credentials: Credentials,
    *,
    mode: CopyMode = "full",
    progress: CopyProgress | None = None,
    time_budget_s: float = 60.0,
    settings: CopySettings | None = None,
    memory_mb: int | None = None,
) -> CopyProgress:
    """One invocation of a copy: from ``progress`` (None: the start) for at most ``time_budget_s``
    (a batch in progress finishes first); answers the progress to give the next invocation.
    ``memory_mb``: the copy function's memory (a larger key is refused by name)."""
    deadline = time.monotonic() + time_budget_s
    with open_copier(
        source, source_credentials, target, target_credentials, settings, memory_mb=memory_mb
    ) as copier:
        return copier.run(progress, mode, deadline)
