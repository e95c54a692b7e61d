"""Make one chosen Task invocation fail (``LocalEngine.fail_at``), as a rehearsal asks."""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask

from redis_migration_ops.local_engine.moto_patch import MotoPatch

INJECTED_ERROR = "RehearsalInjectedFailure"


class FailureInjector:
    """Which Task invocations must fail, and how many times each Task state ran, per execution."""

    def __init__(self) -> None:
        self._targets: dict[str, dict[int, str]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def fail_at(self, state_name: str, k: int, error: str = INJECTED_ERROR) -> None:
        """Make the k-th invocation of ``state_name`` (in each execution) fail with ``error``."""
        if k < 1:
            raise ValueError("k counts invocations from 1")
        with self._lock:
            self._targets.setdefault(state_name, {})[k] = error

    def clear(self) -> None:
        """Forget every chosen failure (counts stay): the next executions run clean."""
        with self._lock:
            self._targets.clear()

    def invocation_count(self, execution_arn: str, state_name: str) -> int:
        """How many times ``state_name`` was invoked in that execution so far."""
        with self._lock:
            return self._counts.get((execution_arn, state_name), 0)

    def next_invocation(self, execution_arn: str, state_name: str) -> tuple[int, str | None]:
        """Count one invocation; answer its number and the error it must fail with (or None)."""
        with self._lock:
            key = (execution_arn, state_name)
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            return count, self._targets.get(state_name, {}).get(count)


class FailureInjection(MotoPatch):
    """Gap: moto cannot make one chosen Task invocation fail.

    Fill: every attempt of a Task state (``ExecutionState._evaluate_with_timeout`` on a
    ``StateTask``: Lambda, aws-sdk, sns, ... alike; Map iterations and retries each count) is
    counted per execution and state name; the chosen one raises moto's ``FailureEventException``
    with a ``TaskFailed`` event named ``RehearsalInjectedFailure``, which Retry and Catch see.
    """

    def __init__(self, injector: FailureInjector) -> None:
        super().__init__()
        self._injector = injector

    def install(self) -> None:
        injector = self._injector
        original = ExecutionState._evaluate_with_timeout

        def evaluate_with_timeout(state: ExecutionState, env: Any) -> None:
            if isinstance(state, StateTask):
                execution_arn = str(env.states.context_object.context_object_data["Execution"]["Id"])
                count, error = injector.next_invocation(execution_arn, state.name)
                if error is not None:
                    cause = (
                        f"Injected by the local engine: invocation {count} of Task state '{state.name}' "
                        "fails (LocalEngine.fail_at)"
                    )
                    details: Any = {"taskFailedEventDetails": {"error": error, "cause": cause}}
                    raise FailureEventException(
                        FailureEvent(
                            env=env,
                            error_name=CustomErrorName(error),
                            event_type=HistoryEventType.TaskFailed,
                            event_details=details,
                        )
                    )
            original(state, env)

        self._replace(ExecutionState, "_evaluate_with_timeout", evaluate_with_timeout)
