"""The data at the cutover, key by key: what a copy back compares both sides with.

After a consistent copy and its verification, with every writer frozen, ElastiCache and the
self-hosted Redis hold the same keys. That moment is the *baseline*: a later rollback must carry
back what the switched writers changed on the self-hosted Redis since then, and nothing else; a key
that someone else changed on ElastiCache since then must not be overwritten, and a key changed on
both sides is a conflict. Neither Redis keeps a key's history, so the baseline is recorded here:
each key's type, content digest (``lua/key_state.lua``, the verification's own digest) and absolute
expiry, read from the self-hosted Redis (not the production source) while the writers are frozen.

Storage: the run's records bucket (:mod:`redis_migration.records`), in :data:`PARTITIONS` objects
per slice, a key's partition chosen by a hash of its database and name, so a copy back loads only
the partitions of the keys it has to decide. Each slice's objects are listed with their SHA-256 in
a slice manifest; the last slice writes the baseline's manifest, whose digest the execution keeps:
whoever reads the baseline later (a rollback days after) checks every object against it.

A key is stored as ``[fingerprint, expiry]``: the first 64 bits of SHA-1 over its type and digest
(a collision would need two different values of one key with the same 64 bits), and its absolute
expiry in unix milliseconds (-1: none), compared within a tolerance as the verification does.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.data.compare import DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_STRING, KeyState, read_key_state
from redis_migration.data.copy import keyspace
from redis_migration.data.link import RedisLink, RedisUnavailable, Script
from redis_migration.models import BaselineRef, Model, RecordLocation
from redis_migration.records import get_record, put_record

STATE_SCRIPT = Script.load("key_state.lua", "state_batch.lua")
PARTITIONS = 16
BATCH_KEYS = 500
MAX_RECONNECTS = 3


def fingerprint(state: KeyState) -> str:
    """The 64-bit fingerprint of a key's type and content (not its expiry)."""
    return hashlib.sha1(state.kind.encode() + b"\n" + state.digest).hexdigest()[:16]  # noqa: S324


def partition_of(db: int, key: bytes) -> int:
    """Which of the :data:`PARTITIONS` objects holds ``key`` of database ``db``."""
    return hashlib.sha256(b"%d:" % db + key).digest()[0] % PARTITIONS


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


class ObjectDigest(Model):
    key: str
    sha256: str


class BaselineManifest(Model):
    """Where the baseline is: every object with its digest, and how many keys it holds."""

    record: RecordLocation
    objects: list[ObjectDigest]
    keys: int


class BaselineProgress(Model):
    """Where the recording is (the output of one invocation, the input of the next)."""

    databases: list[int]
    db_index: int = 0
    cursor: str = "0"
    keys: int = 0
    invocations: int = 0
    seconds: float = 0.0
    # One manifest per invocation (its objects and their digests), pinned by digest.
    slices: list[ObjectDigest] = []
    done: bool = False
    baseline: BaselineRef | None = None


def baseline_prefix(record: RecordLocation) -> str:
    return f"{record.prefix}results/baseline/"


@dataclass(frozen=True)
class PlainState:
    """A key's state as the copy back compares it."""

    fingerprint: str
    expiry: int


def read_states(link: RedisLink, keys: list[bytes]) -> dict[bytes, KeyState]:
    """The state of ``keys`` in ``link``'s current database (absent keys: kind ``none``); keys too
    large for one script are read in chunks."""
    states: dict[bytes, KeyState] = {}
    for start in range(0, len(keys), BATCH_KEYS):
        chunk = keys[start : start + BATCH_KEYS]
        reply = link.script(
            STATE_SCRIPT,
            "keys",
            len(chunk),
            *chunk,
            link.expiry_command,
            DEFAULT_MAX_ELEMENTS,
            DEFAULT_MAX_STRING,
        )
        states.update(_parse_states(reply[1], link))
    return states


def scan_states(link: RedisLink, cursor: str) -> tuple[str, dict[bytes, KeyState]]:
    """One SCAN batch of ``link``'s current database with each key's state."""
    reply = link.script(
        STATE_SCRIPT,
        "scan",
        cursor,
        BATCH_KEYS,
        link.expiry_command,
        DEFAULT_MAX_ELEMENTS,
        DEFAULT_MAX_STRING,
    )
    cursor_raw = reply[0]
    return (cursor_raw.decode() if isinstance(cursor_raw, bytes) else str(cursor_raw)), _parse_states(
        reply[1], link
    )


def _parse_states(flat: list[Any], link: RedisLink) -> dict[bytes, KeyState]:
    states: dict[bytes, KeyState] = {}
    for index in range(0, len(flat), 4):
        key = bytes(flat[index])
        kind = bytes(flat[index + 1]).decode()
        expiry, digest = int(flat[index + 2]), bytes(flat[index + 3])
        state = KeyState(kind, expiry, digest)
        if kind != "none" and digest == b"":
            # Larger than a script reads at once: in chunks, order-free so that both servers agree.
            state = read_key_state(link, key, order_free=True)
        states[key] = state
    return states


def record_baseline(
    make_link: Callable[[], RedisLink],
    record: RecordLocation,
    progress: BaselineProgress | None,
    time_budget_s: float,
    aws: AwsClients,
) -> BaselineProgress:
    """Record the state of every key of the self-hosted Redis, from ``progress`` (None: the start)
    for about ``time_budget_s``; answer the progress for the next invocation."""
    started = time.monotonic()
    deadline = started + time_budget_s
    link = make_link()
    try:
        current = progress or BaselineProgress(databases=sorted(keyspace(link)))
        number = current.invocations + 1
        partitions: dict[int, dict[str, dict[str, list[Any]]]] = {}
        db_index, cursor, keys = current.db_index, current.cursor, current.keys
        failures = 0
        while db_index < len(current.databases):
            db = current.databases[db_index]
            try:
                link.select(db)
                cursor, states = scan_states(link, cursor)
                failures = 0
            except (redis.ConnectionError, redis.TimeoutError, RedisUnavailable):
                failures += 1
                if failures > MAX_RECONNECTS:
                    raise
                link.close()
                continue
            for key, state in states.items():
                if state.kind == "none":
                    continue
                target = partitions.setdefault(partition_of(db, key), {}).setdefault(str(db), {})
                target[encode_key(key)] = [fingerprint(state), state.expiry]
                keys += 1
            if cursor == "0":
                db_index, cursor = db_index + 1, "0"
            if time.monotonic() >= deadline:
                break
    finally:
        link.close()
    with aws_errors_as_transient():
        objects = [
            ObjectDigest(key=key, sha256=put_record(record, key, document, aws))
            for key, document in _slice_objects(record, number, partitions)
        ]
        slice_key = f"{baseline_prefix(record)}slice-{number:04d}.json"
        slice_digest = put_record(record, slice_key, [o.model_dump() for o in objects], aws)
    slices = [*current.slices, ObjectDigest(key=slice_key, sha256=slice_digest)]
    done = db_index >= len(current.databases)
    baseline = None
    if done:
        with aws_errors_as_transient():
            baseline = _write_manifest(record, slices, keys, aws)
    return BaselineProgress(
        databases=current.databases,
        db_index=db_index,
        cursor=cursor,
        keys=keys,
        invocations=number,
        seconds=round(current.seconds + time.monotonic() - started, 3),
        slices=slices,
        done=done,
        baseline=baseline,
    )


def _slice_objects(
    record: RecordLocation, number: int, partitions: dict[int, dict[str, dict[str, list[Any]]]]
) -> Iterator[tuple[str, dict[str, dict[str, list[Any]]]]]:
    for partition, document in sorted(partitions.items()):
        yield f"{baseline_prefix(record)}{number:04d}-{partition:02d}.json", document


def _write_manifest(
    record: RecordLocation, slices: list[ObjectDigest], keys: int, aws: AwsClients
) -> BaselineRef:
    objects: list[ObjectDigest] = []
    for piece in slices:
        objects += [ObjectDigest.model_validate(o) for o in get_record(record, piece.key, piece.sha256, aws)]
    manifest = BaselineManifest(record=record, objects=objects, keys=keys)
    key = f"{baseline_prefix(record)}manifest.json"
    digest = put_record(record, key, manifest.to_json_dict(), aws)
    return BaselineRef(record=record, manifest_key=key, manifest_sha256=digest, keys=keys)


class Baseline:
    """A recorded baseline, read partition by partition as keys are looked up (every object checked
    against the manifest's digests, the manifest against the execution's)."""

    def __init__(self, ref: BaselineRef, aws: AwsClients) -> None:
        self._aws = aws
        manifest = BaselineManifest.model_validate(
            get_record(ref.record, ref.manifest_key, ref.manifest_sha256, aws)
        )
        self._record = manifest.record
        self._by_partition: dict[int, list[ObjectDigest]] = {}
        for item in manifest.objects:
            partition = int(item.key.rsplit("-", 1)[-1].removesuffix(".json"))
            self._by_partition.setdefault(partition, []).append(item)
        self._loaded: dict[int, dict[str, dict[str, list[Any]]]] = {}
        self.keys = manifest.keys

    def state(self, db: int, key: bytes) -> PlainState | None:
        """The key's state at the cutover, or None when it did not exist then."""
        partition = partition_of(db, key)
        if partition not in self._loaded:
            merged: dict[str, dict[str, list[Any]]] = {}
            for item in self._by_partition.get(partition, []):
                with aws_errors_as_transient():
                    document = get_record(self._record, item.key, item.sha256, self._aws)
                for name, entries in document.items():
                    merged.setdefault(name, {}).update(entries)
            self._loaded[partition] = merged
        found = self._loaded[partition].get(str(db), {}).get(encode_key(key))
        return PlainState(fingerprint=str(found[0]), expiry=int(found[1])) if found else None
