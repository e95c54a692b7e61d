"""Progress a person can follow: the copy's, the verification's and the freeze's, read from the history.

The data steps run in slices (one Lambda invocation each, resumable by cursor); each slice's output
is in the execution history (``CopyProgress``, ``VerifyProgress``: ``redis_migration.data.copy`` and
``verify``). :class:`DataProgress` turns those events, as they arrive, into lines:

- the copy: keys done of the source's total (CheckData's ``sourceKeys``), the rate, the time left;
- the verification: keys checked of the keys it found, the rate, the time left;
- the freeze: from FreezeWriters (or RefreezeWriters) until the writers are thawed, its elapsed
  time against ``maxFreezeSeconds`` on every line while it lasts.

A slice can last minutes (``DataCopySliceSeconds``); between two of its outputs
:meth:`DataProgress.heartbeat` says the slice is still running and where it should be by now at the
last slice's rate, so a copy of millions of keys never looks stuck. :func:`execution_warnings`
names what a succeeded execution did not do (a host that was not inspected afterwards). Nothing here
calls AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis_migration_ops.audit.history import Event, HistoryIndex, parse_json

DATA_STATES = {"CopyData": "copy", "CopyDataBack": "copy back", "VerifyData": "verification"}
FREEZE_STARTS = frozenset({"FreezeWriters", "RefreezeWriters"})
FREEZE_ENDS = frozenset({"UnfreezeWriters", "RestoreWriterConcurrency"})
DEFAULT_MAX_FREEZE_SECONDS = 300
HEARTBEAT_SECONDS = 30.0


def event_time(event: Event) -> datetime | None:
    """An event's timestamp (a datetime from boto3, or its text in a saved history)."""
    value = event.get("timestamp")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 04 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@dataclass
class _Slice:
    """The latest output of one data step, and when the next slice began."""

    done: int = 0
    total: int | None = None
    rate: float = 0.0
    slices: int = 0
    running_since: datetime | None = None
    last_line_at: datetime | None = None
    mode: str | None = None  # a copy's mode (full, changes): a new mode starts a new count


class DataProgress:
    """Lines about the data steps and the freeze, from history events in order (see the module doc)."""

    def __init__(self) -> None:
        self._index = HistoryIndex([])
        self.source_keys: int | None = None
        self.max_freeze_seconds = DEFAULT_MAX_FREEZE_SECONDS
        self.frozen_since: datetime | None = None
        self._slices: dict[str, _Slice] = {}
        self._running: str | None = None

    def __call__(self, event: Event) -> list[str]:
        """The lines ``event`` adds (most events add none)."""
        self._index.by_id[int(event["id"])] = event
        kind = str(event.get("type"))
        at = event_time(event)
        if kind == "ExecutionStarted":
            given = parse_json((event.get("executionStartedEventDetails") or {}).get("input"))
            if isinstance(given, dict) and isinstance(given.get("maxFreezeSeconds"), int):
                self.max_freeze_seconds = given["maxFreezeSeconds"]
            return []
        name = HistoryIndex.state_name(event)
        if HistoryIndex.is_entered(event) and name is not None:
            return self._entered(name, at)
        if HistoryIndex.is_exited(event) and name in FREEZE_ENDS and self.frozen_since is not None:
            elapsed = (at - self.frozen_since).total_seconds() if at else 0.0
            self.frozen_since = None
            return [f"freeze over after {duration(elapsed)} (at most {self.max_freeze_seconds} s)"]
        details = event.get("taskSucceededEventDetails")
        if details and details.get("resourceType") == "lambda":
            owner = self._index.owning_entered_id(event)
            state = HistoryIndex.state_name(self._index.by_id[owner]) if owner is not None else None
            payload = parse_json(details.get("output"))
            payload = payload.get("Payload") if isinstance(payload, dict) else None
            if isinstance(payload, dict) and state is not None:
                return self._result(state, payload, at)
        return []

    def _entered(self, name: str, at: datetime | None) -> list[str]:
        if name in FREEZE_STARTS:
            self.frozen_since = at
            return [f"freeze: the writers are frozen (at most {self.max_freeze_seconds} s until they thaw)"]
        if name in DATA_STATES:
            self._running = name
            self._slices.setdefault(name, _Slice()).running_since = at
        return []

    def _result(self, state: str, payload: dict[str, Any], at: datetime | None) -> list[str]:
        if state == "CheckData" and isinstance(payload.get("sourceKeys"), int):
            self.source_keys = payload["sourceKeys"]
            return []
        if state == "CheckPreconditions":
            data = payload.get("data")
            if isinstance(data, dict) and isinstance(data.get("maxFreezeSeconds"), int):
                self.max_freeze_seconds = data["maxFreezeSeconds"]
            return []
        if state not in DATA_STATES:
            return []
        self._running = None
        slice_ = self._slices.setdefault(state, _Slice())
        if slice_.mode != payload.get("mode"):
            slice_.mode, slice_.slices = payload.get("mode"), 0
        slice_.slices += 1
        slice_.last_line_at = at
        counters: dict[str, Any] = payload["counters"] if isinstance(payload.get("counters"), dict) else {}
        seconds = float(counters.get("seconds") or 0.0)
        scanned = int(counters.get("scanned") or 0)
        slice_.rate = scanned / seconds if seconds > 0 else 0.0
        if state == "VerifyData":
            source = counters.get("sourceKeys")
            slice_.total = sum(int(v) for v in source.values()) if isinstance(source, dict) else None
            slice_.done = scanned
        else:
            slice_.total = self.source_keys if state == "CopyData" else None
            slice_.done = scanned
        return [self._line(state, slice_, payload)]

    def _line(self, state: str, slice_: _Slice, payload: dict[str, Any]) -> str:
        what = DATA_STATES[state]
        mode = payload.get("mode")
        if state == "CopyData" and mode == "changes":
            what = "copy of what changed"
        done = bool(payload.get("done"))
        # CheckData counted the source before the copy; clients may have written since.
        parts = [f"{what}: {_of(slice_.done, slice_.total, approximate=state == 'CopyData')} keys"]
        if slice_.rate:
            parts.append(f"{slice_.rate:,.0f} keys/s")
        if done:
            parts.append(f"done in {slice_.slices} slice(s)")
        elif slice_.total and slice_.rate and slice_.total > slice_.done:
            parts.append(f"about {duration((slice_.total - slice_.done) / slice_.rate)} left")
        counters: dict[str, Any] = payload.get("counters") or {}
        if state == "VerifyData":
            problems = int(counters.get("missing") or 0) + sum(
                int(counters.get(k) or 0) for k in ("typeMismatches", "valueMismatches", "ttlMismatches")
            )
            parts.append(f"{problems} missing or different")
        elif mode == "changes":
            parts.append(f"{int(counters.get('changed') or 0)} changed")
        return "; ".join(parts) + self._freeze_note(None)

    def _freeze_note(self, now: datetime | None) -> str:
        if self.frozen_since is None:
            return ""
        last = now or max(
            (s.last_line_at for s in self._slices.values() if s.last_line_at is not None),
            default=self.frozen_since,
        )
        elapsed = (last - self.frozen_since).total_seconds()
        return f" (frozen {duration(elapsed)} of at most {self.max_freeze_seconds} s)"

    def heartbeat(self, now: datetime) -> str | None:
        """While a data slice runs and has said nothing for ``HEARTBEAT_SECONDS``: a line saying so,
        with where it should be by now at the last slice's rate (None otherwise)."""
        if self._running is None:
            return None
        slice_ = self._slices.get(self._running)
        if slice_ is None or slice_.running_since is None:
            return None
        last = (
            slice_.last_line_at
            if slice_.last_line_at and slice_.last_line_at > slice_.running_since
            else None
        )
        quiet_since = max(slice_.running_since, last) if last else slice_.running_since
        if (now - quiet_since).total_seconds() < HEARTBEAT_SECONDS:
            return None
        slice_.last_line_at = now
        running = (now - slice_.running_since).total_seconds()
        line = f"{DATA_STATES[self._running]}: slice {slice_.slices + 1} running for {duration(running)}"
        if slice_.rate:
            estimate = slice_.done + slice_.rate * running
            if slice_.total:
                estimate = min(estimate, slice_.total)
            about = _of(int(estimate), slice_.total, approximate=True)
            line += f", about {about} keys by now at {slice_.rate:,.0f} keys/s"
        return line + self._freeze_note(now)


def _of(done: int, total: int | None, *, approximate: bool = False) -> str:
    if total:
        about = "~" if approximate else ""
        return f"{done:,} of {about}{total:,} ({min(100.0, 100.0 * done / total):.0f} %)"
    return f"{done:,}"


def execution_warnings(described: Mapping[str, Any], history: Sequence[Event]) -> list[str]:
    """What a SUCCEEDED execution says it did not do, one line each (empty: nothing).

    InspectHostAfter is read-only and its failure is only noted by the workflow (``hostAfter`` is
    null in the output): the run is migrated, but nobody has looked at the host since.
    """
    if described.get("status") != "SUCCEEDED":
        return []
    output = parse_json(described.get("output"))
    if not isinstance(output, dict) or output.get("outcome") != "migrated" or output.get("hostAfter"):
        return []
    index = HistoryIndex(history)
    failures = []
    for event in history:
        if str(event.get("type")) in {"TaskFailed", "TaskTimedOut", "LambdaFunctionFailed"}:
            owner = index.owning_entered_id(event)
            if owner is not None and HistoryIndex.state_name(index.by_id[owner]) == "InspectHostAfter":
                details: dict[str, Any] = next(
                    (v for k, v in event.items() if k.endswith("EventDetails")), {}
                )
                failures.append(f"{details.get('error')}: {str(details.get('cause') or '')[:200]}")
    reason = f"InspectHostAfter failed ({failures[-1]})" if failures else "InspectHostAfter recorded nothing"
    return [
        f"{reason}: the host after the migration was not inspected, so the record has no hostAfter. "
        "Inspect the instance yourself (redis-cli INFO, the service, the config; docs/operating.md)"
    ]
