"""The write ledger: every write a rehearsal's clients had acknowledged, and the check that none was lost.

Jepsen's way: clients do real work through the whole run (:mod:`~redis_migration_ops.rehearsal.
client_writes`), every write a Redis acknowledged becomes one line of ``ledger.jsonl`` in the
workdir, and after the run (the writers stopped) :func:`check_ledger` compares what was
acknowledged with what the servers hold. The workflow's own flags are never read.

A line: ``{"client", "db", "key", "value", "redis": "host:port", "at", "kind", "acknowledged"}``.
``kind`` is ``set`` (``value`` is the string written; a key written again later only needs its
last value) or ``incrby`` (``value`` is the increment, an integer, of a counter the client functions
share); ``redis`` is the address the client's configuration named when it wrote (``host:port``, the
host as its variable holds it, lower case, without a trailing dot); ``at`` is when the write was
acknowledged (UTC, ISO 8601). ``acknowledged`` is true for every write the server answered. A write
whose answer never came (a timeout, a connection broken after the command was sent) may or may not
have happened: it is a line with ``acknowledged: false``, never counted as acknowledged, and the
check accepts its effect (its value, if it came after the key's last acknowledged write; its
increment, for a counter) without requiring it. Values are unique per write, so a value on a
server proves that write happened.

**Lost.** A write is lost when it is neither

1. on the Redis its client points to at the end (its configuration then, read from Lambda), with
   its last acknowledged value; for a counter: the counter's value on the Redis its writers point
   to at the end equals the sum of every acknowledged increment (a counter whose writers end on
   different Redis servers is split, and counts as lost); nor
2. **named in what is left to do**: found, with that value (a counter: with that sum), on a Redis
   that an item of what the runs left to do by hand names (``leftToDoByHand`` of a RollbackFailed
   cause, or a ``leftToDo``/``leftToDoByHand`` list in a run's output). An item names a Redis when
   it holds one of its addresses as a whole word: for ElastiCache its endpoint names or its
   replication group's id, for the self-hosted Redis the instance's private IP or its id. Such a
   write still exists and the operator has been told where; it is counted in ``namedInToDo``.
   A key an item names itself (``db<N>:<key>``: a conflict, written on both sides, whose values
   the operator is told to compare) counts as named too, counter or not: its writes are on the
   servers the item names, in parts no rule can merge. So does a counter whose parts (on the
   server its writers end on and on the servers the items name) add up to the sum: a run that
   carried no data left the increments made before the cutover on ElastiCache, and said so.

``lost`` counts lost writes (a counter that does not add up counts once); ``lostKeys`` names the
first 20, each with what was expected and what was found.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

LEDGER_FILE = "ledger.jsonl"
# Every key the writers touch starts with this: the rehearsal's own data checks leave them to the ledger.
KEY_PREFIX = "rehearsal-ledger:"
LOST_KEYS_SHOWN = 20

WriteKind = Literal["set", "incrby"]


@dataclass(frozen=True)
class LedgerEntry:
    """One acknowledged write (see the module doc)."""

    client: str
    db: int
    key: str
    value: str | int
    redis: str
    at: str
    kind: WriteKind = "set"
    # False: no answer came (timed out); the write may or may not have happened.
    acknowledged: bool = True


class Ledger:
    """``ledger.jsonl``, appended to as writes are acknowledged (thread-safe), and kept in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()
        path.write_text("")

    def record(self, entry: LedgerEntry) -> None:
        """Append one acknowledged write (flushed at once: a crash keeps what was acknowledged)."""
        line = json.dumps(asdict(entry), separators=(",", ":")) + "\n"
        with self._lock:
            self._entries.append(entry)
            with self.path.open("a") as stream:
                stream.write(line)

    def entries(self) -> list[LedgerEntry]:
        """Every write so far, in the order acknowledged."""
        with self._lock:
            return list(self._entries)


def read_ledger(path: Path) -> list[LedgerEntry]:
    """The entries of a ledger file (a reader's check of a rehearsal afterwards)."""
    return [LedgerEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


class RedisReader(Protocol):
    """How the check reaches the servers (over loopback, outside the workflow)."""

    def server_of(self, address: str) -> str | None:
        """The server (an id) a client configured with ``address`` (``host:port``) reaches."""

    def servers(self) -> list[str]:
        """Every server a write may be on."""

    def names(self, server: str) -> list[str]:
        """The words that name ``server`` in a to-do item (addresses, ids), lower case."""

    def get(self, server: str, db: int, keys: Sequence[str]) -> list[str | None]:
        """The string value of each key (None: absent, or not a string)."""


@dataclass
class LedgerVerdict:
    acknowledged: int
    lost: int
    lost_keys: list[str] = field(default_factory=list)
    named_in_to_do: int = 0
    counters: int = 0
    keys: int = 0

    def as_report(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "lost": self.lost,
            "lostKeys": self.lost_keys[:LOST_KEYS_SHOWN],
            "namedInToDo": self.named_in_to_do,
            "keysChecked": self.keys,
            "countersChecked": self.counters,
        }


def names_redis(item: str, names: Iterable[str]) -> bool:
    """Whether the to-do ``item`` holds one of ``names`` as a whole word (``10.0.0.1`` does not name
    ``10.0.0.12``; a trailing ``:port`` or punctuation is fine)."""
    lowered = item.lower()
    for name in names:
        if name and re.search(rf"(?<![\w.-]){re.escape(name.lower())}(?![\w-]|\.\w)", lowered):
            return True
    return False


def to_do_items(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """What the runs left to do by hand: each described execution's RollbackFailed
    ``leftToDoByHand`` and any ``leftToDo``/``leftToDoByHand`` list in its output."""
    items: list[str] = []
    for described in runs:
        for text in (described.get("cause"), described.get("output")):
            try:
                document = json.loads(text) if isinstance(text, str) else None
            except json.JSONDecodeError:
                continue
            if isinstance(document, dict):
                for name in ("leftToDoByHand", "leftToDo"):
                    listed = document.get(name)
                    if isinstance(listed, list):
                        items += [str(item) for item in listed]
    return items


def check_ledger(
    entries: Sequence[LedgerEntry],
    end_address: Mapping[str, str | None],
    reader: RedisReader,
    to_do: Sequence[str],
) -> LedgerVerdict:
    """Every acknowledged write against the servers (see the module doc for the rule).

    ``end_address``: client -> the ``host:port`` its configuration names at the end (None: none
    that the rehearsal can reach, e.g. a variable that embeds the name in a longer text).
    """
    named_servers = {
        server for server in reader.servers() if any(names_redis(i, reader.names(server)) for i in to_do)
    }
    last: dict[tuple[int, str], LedgerEntry] = {}
    # Values a key may hold instead of its last acknowledged one: writes after it that got no answer.
    maybe: dict[tuple[int, str], set[str]] = {}
    increments: dict[tuple[int, str], list[LedgerEntry]] = {}
    unanswered_increments: dict[tuple[int, str], int] = {}
    for entry in entries:
        name = (entry.db, entry.key)
        if entry.kind == "incrby":
            if entry.acknowledged:
                increments.setdefault(name, []).append(entry)
            else:
                unanswered_increments[name] = unanswered_increments.get(name, 0) + int(entry.value)
        elif entry.acknowledged:
            last[name] = entry
            maybe.pop(name, None)
        else:
            maybe.setdefault(name, set()).add(str(entry.value))
    verdict = LedgerVerdict(
        acknowledged=sum(1 for entry in entries if entry.acknowledged),
        lost=0,
        keys=len(last),
        counters=len(increments),
    )

    # Unique keys: read each on its client's end server, in one batch per (server, db).
    wanted: dict[tuple[str | None, int], list[LedgerEntry]] = {}
    for (db, _), entry in last.items():
        server = _end_server(reader, end_address, entry.client)
        wanted.setdefault((server, db), []).append(entry)
    for (server, db), group in sorted(wanted.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        found = reader.get(server, db, [e.key for e in group]) if server is not None else [None] * len(group)
        missing = [
            (entry, value)
            for entry, value in zip(group, found, strict=True)
            if value != entry.value and value not in maybe.get((db, entry.key), set())
        ]
        if not missing:
            continue
        elsewhere = _found_on(reader, named_servers, db, [entry.key for entry, _ in missing])
        for index, (entry, value) in enumerate(missing):
            if any(values[index] == entry.value for values in elsewhere.values()) or key_named(
                to_do, db, entry.key
            ):
                verdict.named_in_to_do += 1
                continue
            verdict.lost += 1
            where = end_address.get(entry.client) or "no Redis it can reach"
            verdict.lost_keys.append(
                f"{entry.key} (db {entry.db}, {entry.client}): {entry.value!r} acknowledged by {entry.redis} "
                f"at {entry.at}; on {where} at the end: {value!r}"
            )

    # Shared counters: the sum of the increments, on the one server their writers end on.
    for (db, key), group in sorted(increments.items()):
        expected = sum(int(entry.value) for entry in group)
        # Increments that got no answer may have happened: the value may be above by up to their sum.
        fits = range(expected, expected + unanswered_increments.get((db, key), 0) + 1)
        ends = {_end_server(reader, end_address, entry.client) for entry in group}
        total: str | None = None
        if len(ends) == 1 and None not in ends:
            (server,) = ends
            total = reader.get(str(server), db, [key])[0]
            if _as_int(total) in fits:
                continue
        elsewhere = _found_on(reader, named_servers, db, [key])
        if any(_as_int(values[0]) in fits for values in elsewhere.values()) or key_named(to_do, db, key):
            verdict.named_in_to_do += 1
            continue
        if _split_over_named(reader, ends, named_servers, db=db, key=key, fits=fits):
            verdict.named_in_to_do += 1
            continue
        verdict.lost += 1
        if len(ends) == 1:
            verdict.lost_keys.append(
                f"{key} (db {db}, counter of {len({e.client for e in group})} client(s)): {expected} "
                f"acknowledged in {len(group)} increment(s); {total!r} at the end"
            )
        else:
            verdict.lost_keys.append(
                f"{key} (db {db}, counter): {expected} acknowledged, its writers end on different Redis "
                f"servers ({', '.join(sorted(str(end) for end in ends))})"
            )
    return verdict


def _split_over_named(
    reader: RedisReader, ends: set[str | None], named: set[str], *, db: int, key: str, fits: range
) -> bool:
    """A counter whose increments are in parts: the part on the server its writers end on, the rest
    on servers the to-do names (a run that carried no data leaves the part written before the
    cutover on ElastiCache, and says so). Every increment exists, and the operator knows where."""
    if None in ends or not named - ends:
        return False
    parts = [_as_int(reader.get(str(server), db, [key])[0]) for server in sorted(ends | named, key=str)]
    return None not in parts and sum(p for p in parts if p is not None) in fits


def key_named(to_do: Sequence[str], db: int, key: str) -> bool:
    """Whether an item of what is left to do names this key itself (``db<N>:<key>``)."""
    pattern = re.compile(rf"(?<![\w:])db{db}:{re.escape(key)}(?![\w:-])")
    return any(pattern.search(item) for item in to_do)


def _end_server(reader: RedisReader, end_address: Mapping[str, str | None], client: str) -> str | None:
    address = end_address.get(client)
    return reader.server_of(address) if address else None


def _found_on(
    reader: RedisReader, servers: Iterable[str], db: int, keys: Sequence[str]
) -> dict[str, list[str | None]]:
    return {server: reader.get(server, db, keys) for server in sorted(servers)}


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return None
