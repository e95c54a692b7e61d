"""Walking a Step Functions execution history (events linked by ``previousEventId``).

Inside a Map the iterations interleave, so a state's events are found by walking that chain, never
by position. Nothing here calls AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

FAILURE_TYPES = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "MapStateFailed",
        "ExecutionFailed",
        "ExecutionTimedOut",
        "ExecutionAborted",
    }
)
TASK_END_TYPES = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded"}) | FAILURE_TYPES

Event = Mapping[str, Any]

# The migration's approval gate, and the error a rejection fails it with (redis-migration reject).
APPROVAL_STATE = "WaitForApproval"
APPROVAL_REJECTED = "ApprovalRejected"


def parse_json(text: Any) -> Any:
    """``text`` parsed as JSON when it is a JSON string, else ``text`` itself (None stays None)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def not_a_succeeded_migration(
    described: Mapping[str, Any], *, why_succeeded: str, outcome_tail: str
) -> str | None:
    """Why the described execution is not a migration that succeeded, or None when it is one.

    The operator's commands that act on a past migration (rollback, decommission) check this
    before starting a run the workflow would refuse; ``why_succeeded`` ends the "not SUCCEEDED"
    sentence, ``outcome_tail`` follows the outcome in the "not a migration" one.
    """
    name = described.get("name", described.get("executionArn"))
    if described.get("status") != "SUCCEEDED":
        return f"execution {name} is {described.get('status')}, not SUCCEEDED: {why_succeeded}"
    output = parse_json(described.get("output"))
    outcome = output.get("outcome") if isinstance(output, dict) else None
    if outcome != "migrated":
        return f"execution {name} is not a migration (its outcome is {outcome!r}{outcome_tail}"
    return None


def iso_time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


# ---------------------------------------------------------------------------------------------
# Walking a history.


class HistoryIndex:
    """Who owns which event: the state an event belongs to, a state's exit, its nesting depth."""

    def __init__(self, history: Iterable[Event]) -> None:
        self.events: list[Event] = list(history)
        self.by_id: dict[int, Event] = {int(event["id"]): event for event in self.events}
        self._depth: dict[int, int] = {}

    @staticmethod
    def is_entered(event: Event) -> bool:
        return str(event["type"]).endswith("StateEntered")

    @staticmethod
    def is_exited(event: Event) -> bool:
        return str(event["type"]).endswith("StateExited")

    @staticmethod
    def state_name(event: Event) -> str | None:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
        return str(details["name"]) if details else None

    def _previous(self, event: Event) -> Event | None:
        return self.by_id.get(int(event.get("previousEventId") or 0))

    def owning_entered_id(self, event: Event) -> int | None:
        """The nearest earlier StateEntered event on ``event``'s chain (the state it happened in)."""
        previous = self._previous(event)
        while previous is not None:
            if self.is_entered(previous):
                return int(previous["id"])
            previous = self._previous(previous)
        return None

    def entered_of_exit(self, exited: Event) -> Event | None:
        """The StateEntered event an exit closes (same name; a Map's exit chain passes its iterations)."""
        name = self.state_name(exited)
        previous = self._previous(exited)
        while previous is not None:
            if self.is_entered(previous) and self.state_name(previous) == name:
                return previous
            previous = self._previous(previous)
        return None

    def depth(self, entered: Event) -> int:
        """0 for a top-level state, 1 inside a Map iteration, and so on."""
        key = int(entered["id"])
        if key not in self._depth:
            self._depth[key] = self._compute_depth(entered)
        return self._depth[key]

    def _compute_depth(self, entered: Event) -> int:
        previous = self._previous(entered)
        while previous is not None:
            kind = str(previous["type"])
            if kind == "MapIterationStarted":
                owner = self.owning_entered_id(previous)
                return self.depth(self.by_id[owner]) + 1 if owner is not None else 1
            if kind == "MapStateExited" or self.is_exited(previous):
                closed = self.entered_of_exit(previous)
                return self.depth(closed) if closed is not None else 0
            if self.is_entered(previous):
                return self.depth(previous)
            previous = self._previous(previous)
        return 0

    def current_state(self) -> str | None:
        """The latest top-level state that was entered and not exited."""
        closed = {int(e["id"]) for x in self.events if self.is_exited(x) and (e := self.entered_of_exit(x))}
        open_states = [e for e in self.events if self.is_entered(e) and int(e["id"]) not in closed]
        return self.state_name(open_states[-1]) if open_states else None


def pending_task_message(history: Sequence[Event], state_name: str) -> dict[str, Any] | None:
    """The message (the approval request, with its ``taskToken``) of ``state_name``'s latest
    ``.waitForTaskToken`` call, if nothing answered it yet."""
    index = HistoryIndex(history)
    entered = [
        event for event in history if index.state_name(event) == state_name and index.is_entered(event)
    ]
    if not entered:
        return None
    latest = entered[-1]
    pending: dict[str, Any] | None = None
    for event in history:
        if event["id"] <= latest["id"] or index.owning_entered_id(event) != latest["id"]:
            continue
        if event["type"] in {"TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskAborted"}:
            return None
        if event["type"] == "TaskStateExited":
            return None
        details = event.get("taskScheduledEventDetails")
        if details:
            parameters = parse_json(details.get("parameters"))
            message = parse_json(parameters.get("Message")) if isinstance(parameters, dict) else None
            if isinstance(message, dict) and isinstance(message.get("taskToken"), str):
                pending = message
    return pending
