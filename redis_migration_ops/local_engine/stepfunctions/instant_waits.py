"""Wait states and Retry backoff return at once; the requested seconds are recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from redis_migration_ops.local_engine.moto_patch import MotoPatch


@dataclass(frozen=True)
class WaitRecord:
    """A wait the workflow asked for: a Wait state or a Retry backoff."""

    state_name: str
    kind: str  # "Wait" | "Retry"
    seconds: float


class WaitRecorder:
    """Thread-safe list of requested waits; listeners hear of each (e.g. the time that a skipped
    Wait stands for, see ``lambda_metrics``)."""

    def __init__(self) -> None:
        self._records: list[WaitRecord] = []
        self._listeners: list[Callable[[WaitRecord], None]] = []
        self._lock = threading.Lock()

    def add(self, record: WaitRecord) -> None:
        """Record one requested wait and tell the listeners (outside the lock)."""
        with self._lock:
            self._records.append(record)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(record)

    def listen(self, listener: Callable[[WaitRecord], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def stop_listening(self, listener: Callable[[WaitRecord], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def snapshot(self) -> list[WaitRecord]:
        """The waits recorded so far, in order."""
        with self._lock:
            return list(self._records)


def _state_name(env: Any) -> str:
    return str(env.states.context_object.context_object_data["State"]["Name"])


class _RecordingSleep:
    """Stands in for the ``time`` module inside moto's retrier: ``sleep`` records, nothing waits."""

    def __init__(self, recorder: WaitRecorder, current: threading.local) -> None:
        self._recorder = recorder
        self._current = current

    def sleep(self, seconds: float) -> None:
        self._recorder.add(WaitRecord(getattr(self._current, "state_name", "?"), "Retry", float(seconds)))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class InstantWaits(MotoPatch):
    """Gap: Wait states (``WaitFunction._wait_interval``) and Retry backoff (``time.sleep`` in
    ``RetrierDecl._eval_body``) wait in real time.

    Fill: both return at once and record (state name, kind, seconds) in a :class:`WaitRecorder`.
    One exception keeps rehearsals honest: while real work runs on a sandbox host (the install
    script), a Wait state lasts until that work ends or its requested seconds pass, whichever is
    first. Otherwise an instant poll loop would spin dozens of times during a one-second install
    and the rehearsal's poll count and requested waits would mean nothing.
    """

    def __init__(self, recorder: WaitRecorder, until_idle: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self._recorder = recorder
        self._until_idle = until_idle

    def install(self) -> None:
        recorder = self._recorder
        current = threading.local()
        original_retrier_body = retrier_decl.RetrierDecl._eval_body

        until_idle = self._until_idle

        def wait_interval(function: WaitFunction, env: Any, wait_seconds: int) -> None:
            recorder.add(WaitRecord(_state_name(env), "Wait", float(wait_seconds)))
            if until_idle is not None:
                until_idle(float(wait_seconds))

        def retrier_eval_body(retrier: Any, env: Any) -> None:
            current.state_name = _state_name(env)
            try:
                original_retrier_body(retrier, env)
            finally:
                current.state_name = "?"

        self._replace(WaitFunction, "_wait_interval", wait_interval)
        self._replace(retrier_decl, "time", _RecordingSleep(recorder, current))
        self._replace(retrier_decl.RetrierDecl, "_eval_body", retrier_eval_body)
