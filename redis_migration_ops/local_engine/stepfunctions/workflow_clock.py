"""The workflow's wall clock moves by every wait it asked for, as it would on AWS.

On AWS a Wait state lasts its seconds and a Retry waits out its backoff ("Wait" and "Retry" in the
Amazon States Language: https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): afterwards,
``$now()`` in JSONata, the context object's times, the execution history's timestamps and the clock
every Lambda function reads are that much later. A bound the workflow checks with ``$now()`` (the
freeze's ``maxFreezeSeconds``, which includes a wait of up to 900 s for running invocations to end)
therefore sees the waits.

Gap: the local engine skips every wait (``instant_waits``), so none of these clocks move: a
900-second wait for writers to finish looked like a moment, and a freeze that AWS would end past
its bound finished "in 3.2 s".

Fill: while the engine runs, the process's wall clock (``time.time``, ``datetime.now``, and what is
built on them: moto's timestamps, jsonata's ``$now()``, the handlers' clocks) is moved forward by
every requested wait, with time-machine (https://pypi.org/project/time-machine/), which changes
the clock in every thread at once. The monotonic clock is left alone: timeouts, deadlines and
sleeps measure real time as they must. Real processes (redis-server, the sandbox's commands) keep
the machine's real clock: nothing the workflow compares with them depends on the wall clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import time_machine

from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord, WaitRecorder


class WorkflowClock(MotoPatch):
    """Gap and fill: see the module doc. :attr:`advanced_seconds` is how far it has moved."""

    def __init__(self, waits: WaitRecorder) -> None:
        super().__init__()
        self._waits = waits
        self._lock = threading.Lock()
        self._travel: Any = None
        self._traveller: Any = None
        self.advanced_seconds = 0.0

    def install(self) -> None:
        self._travel = time_machine.travel(datetime.now(UTC), tick=True)
        self._traveller = self._travel.start()
        self._waits.listen(self._on_wait)

    def uninstall(self) -> None:
        self._waits.stop_listening(self._on_wait)
        if self._travel is not None:
            self._travel.stop()
        self._travel = self._traveller = None
        super().uninstall()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass without a Wait state (a test, or an operator's pause)."""
        with self._lock:
            if self._traveller is None or seconds <= 0:
                return
            self._traveller.shift(seconds)
            self.advanced_seconds += seconds

    def _on_wait(self, record: WaitRecord) -> None:
        self.advance(record.seconds)
