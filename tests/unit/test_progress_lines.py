"""Progress a person can follow (audit/progress.py): the copy, the verification and the freeze, from the
slices' outputs in the history, as `watch`, `start --wait` and `rehearse` print them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from redis_migration_ops.audit.progress import DataProgress, execution_warnings
from redis_migration_ops.operations import ProgressLines

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


class History:
    """Events as Step Functions writes them, each linked to the one before."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at: float, previous: int | None = None, **details: Any) -> int:
        number = len(self.events) + 1
        event = {
            "id": number,
            "previousEventId": previous if previous is not None else number - 1,
            "type": kind,
            "timestamp": T0 + timedelta(seconds=at),
            **details,
        }
        self.events.append(event)
        return number

    def start(self, given: dict[str, Any]) -> None:
        self.add("ExecutionStarted", 0, executionStartedEventDetails={"input": json.dumps(given)})

    def task(self, state: str, at: float, payload: dict[str, Any]) -> None:
        entered = self.add("TaskStateEntered", at, stateEnteredEventDetails={"name": state, "input": "{}"})
        output = json.dumps({"StatusCode": 200, "Payload": payload})
        self.add(
            "TaskSucceeded",
            at + 1,
            entered,
            taskSucceededEventDetails={"resourceType": "lambda", "output": output},
        )

    def state(self, kind: str, state: str, at: float) -> None:
        key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
        details: dict[str, Any] = {key: {"name": state}}
        self.add(kind, at, None, **details)


def copy(
    scanned: int, seconds: float, *, mode: str = "full", done: bool = False, changed: int = 0
) -> dict[str, Any]:
    counters = {"scanned": scanned, "seconds": seconds, "changed": changed}
    return {"mode": mode, "databases": [0], "cursor": "17", "counters": counters, "done": done}


def lines_of(history: History, progress: DataProgress) -> list[str]:
    return [line for event in history.events for line in progress(event)]


def test_the_copy_shows_keys_done_of_the_source_the_rate_and_the_time_left() -> None:
    # Given a copy of a million keys, its first slice done
    history = History()
    history.start({"maxFreezeSeconds": 120})
    history.task("CheckData", 1, {"mode": "consistent", "sourceKeys": 1_000_000})
    history.task("CopyData", 2, copy(250_000, 5.0))
    history.task("CopyData", 10, copy(1_000_000, 20.0, done=True))

    # Then each slice says where the copy is
    assert lines_of(history, DataProgress()) == [
        "copy: 250,000 of ~1,000,000 (25 %) keys; 50,000 keys/s; about 15 s left",
        "copy: 1,000,000 of ~1,000,000 (100 %) keys; 50,000 keys/s; done in 2 slice(s)",
    ]


def test_the_freeze_shows_its_time_against_max_freeze_seconds_until_the_writers_thaw() -> None:
    history = History()
    history.start({"maxFreezeSeconds": 120})
    history.task("CheckData", 1, {"mode": "consistent", "sourceKeys": 1000})
    history.state("MapStateEntered", "FreezeWriters", 100)
    history.task("CopyData", 129, copy(1000, 2.0, mode="changes", done=True, changed=7))
    verify = {
        "counters": {"sourceKeys": {"0": 1000}, "scanned": 500, "seconds": 1.0, "missing": 1},
        "done": False,
    }
    history.task("VerifyData", 139, verify)
    history.state("MapStateExited", "UnfreezeWriters", 160)

    assert lines_of(history, DataProgress()) == [
        "freeze: the writers are frozen (at most 120 s until they thaw)",
        "copy of what changed: 1,000 of ~1,000 (100 %) keys; 500 keys/s; done in 1 slice(s); 7 changed "
        "(frozen 30 s of at most 120 s)",
        "verification: 500 of 1,000 (50 %) keys; 500 keys/s; about 1 s left; 1 missing or different "
        "(frozen 40 s of at most 120 s)",
        "freeze over after 1 min 00 s (at most 120 s)",
    ]


def test_a_long_slice_never_looks_stuck() -> None:
    # Given a slice done at 50,000 keys/s, and the next one running for a while
    history = History()
    history.start({})
    history.task("CheckData", 1, {"sourceKeys": 5_000_000})
    history.task("CopyData", 2, copy(1_000_000, 20.0))
    history.state("TaskStateEntered", "CopyData", 30)
    progress = DataProgress()
    lines_of(history, progress)

    # Then nothing is said before the heartbeat's interval, then an estimate, once per interval
    assert progress.heartbeat(T0 + timedelta(seconds=45)) is None
    assert progress.heartbeat(T0 + timedelta(seconds=70)) == (
        "copy: slice 2 running for 40 s, about 3,000,000 of ~5,000,000 (60 %) keys by now at 50,000 keys/s"
    )
    assert progress.heartbeat(T0 + timedelta(seconds=75)) is None


def test_watch_prints_the_progress_under_the_state_it_belongs_to() -> None:
    history = History()
    history.start({})
    history.task("CheckData", 1, {"sourceKeys": 100})
    history.task("CopyData", 2, copy(100, 1.0, done=True))
    lines = ProgressLines("run")
    shown = [line for event in history.events if (line := lines(event)) is not None]
    assert "→ CopyData" in "\n".join(shown)
    assert shown[-1].endswith("copy: 100 of ~100 (100 %) keys; 100 keys/s; done in 1 slice(s)")


def test_a_succeeded_run_whose_host_was_not_inspected_afterwards_warns() -> None:
    # Given a migration whose InspectHostAfter failed (the workflow only notes it)
    history = History()
    history.start({})
    entered = history.add("TaskStateEntered", 1, stateEnteredEventDetails={"name": "InspectHostAfter"})
    history.add(
        "TaskFailed", 2, entered, taskFailedEventDetails={"error": "InspectFailed", "cause": "no SSM"}
    )
    described = {"status": "SUCCEEDED", "output": json.dumps({"outcome": "migrated", "hostAfter": None})}

    # Then the run says so
    (warning,) = execution_warnings(described, history.events)
    assert warning.startswith("InspectHostAfter failed (InspectFailed: no SSM): the host after the migration")
    # And a run whose host was inspected, or a dry run, says nothing
    inspected = {
        "status": "SUCCEEDED",
        "output": json.dumps({"outcome": "migrated", "hostAfter": {"os": {}}}),
    }
    assert execution_warnings(inspected, history.events) == []
    planned = {"status": "SUCCEEDED", "output": json.dumps({"outcome": "planned"})}
    assert execution_warnings(planned, []) == []
