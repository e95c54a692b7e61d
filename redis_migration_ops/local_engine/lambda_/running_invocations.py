"""Invoking a client function: throttled at reserved concurrency 0, and running until it ends.

What AWS does ("Configuring reserved concurrency for a function",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html, and
PutFunctionConcurrency, https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html):
a function's reserved concurrency applies "to the function as a whole, including all published
versions and the unpublished version"; requests beyond it are throttled, so at 0 every new
invocation is refused (a synchronous caller gets a 429 ``TooManyRequestsException``) and writes
nothing. An invocation that had already started is not stopped: it runs to its end, at most the
function's timeout ("Configure Lambda function timeout",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html). That is why the
consistent mode's freeze waits as long as the longest timeout before it copies what changed.

Gap: in a rehearsal nobody invokes the client functions, and the workflow's Waits return at once
(``stepfunctions/instant_waits.py``), so a simulated client's invocation that began just before the
freeze could still write after the workflow's "wait for the running invocations" had passed: a
write no AWS run could make.

Fill: :meth:`RunningInvocations.invocation` is one invocation of a client function. It is admitted
only while the function's reserved concurrency is not 0 (else :class:`FunctionThrottled`), it runs
as that function (``client_identity.acting_as_function``), and it is recorded as running until the
block ends. :meth:`RunningInvocations.wait_for_earlier` is called by every Wait state: it lasts until
every invocation that started before the Wait, and whose function's timeout fits in the Wait's
seconds, has ended (bounded by those seconds and by ``MAX_REAL_WAIT_S`` of real time): what that
much time would have guaranteed on AWS.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from redis_migration_ops.local_engine.lambda_.client_identity import acting_as_function

# A simulated invocation is one Redis command or two; a Wait never blocks longer than this for one.
MAX_REAL_WAIT_S = 30.0


class FunctionThrottled(Exception):
    """The function's reserved concurrency is 0: Lambda refuses the invocation (429)."""

    def __init__(self, function_name: str) -> None:
        super().__init__(f"Rate Exceeded: {function_name} is throttled (reserved concurrency 0)")
        self.function_name = function_name


@dataclass(frozen=True)
class FunctionLimits:
    """What Lambda reads before admitting an invocation: the reservation and the timeout."""

    reserved_concurrency: int | None
    timeout_s: int


@dataclass
class _Running:
    function_name: str
    timeout_s: int
    started: int  # a sequence number, not a time: "before the Wait" must not depend on clocks
    done: threading.Event


class RunningInvocations:
    """The client functions' invocations in flight (see the module doc). Thread-safe."""

    def __init__(self, limits: Callable[[str], FunctionLimits]) -> None:
        self._limits = limits
        self._running: dict[int, _Running] = {}
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()
        self.throttled: dict[str, int] = {}

    @contextmanager
    def invocation(self, function_name: str) -> Iterator[None]:
        """One invocation of ``function_name``: refused with :class:`FunctionThrottled` at reserved
        concurrency 0, otherwise the block runs as the function, recorded until it ends."""
        with self._lock:
            number = next(self._sequence)
        # Registered before the admission check: a freeze that lands after this point must wait
        # for the invocation (AWS admitted it), one that landed before refuses it below.
        running = _Running(function_name, 0, number, threading.Event())
        with self._lock:
            self._running[number] = running
        try:
            limits = self._limits(function_name)
            if limits.reserved_concurrency == 0:
                with self._lock:
                    self.throttled[function_name] = self.throttled.get(function_name, 0) + 1
                raise FunctionThrottled(function_name)
            running.timeout_s = limits.timeout_s
            with acting_as_function(function_name):
                yield
        finally:
            with self._lock:
                self._running.pop(number, None)
            running.done.set()

    def wait_for_earlier(self, seconds: float) -> None:
        """Block until every invocation running now whose timeout is at most ``seconds`` has ended
        (at most ``seconds``, and at most ``MAX_REAL_WAIT_S``, of real time)."""
        deadline = time.monotonic() + min(seconds, MAX_REAL_WAIT_S)
        with self._lock:
            earlier = list(self._running.values())
        for running in earlier:
            # An invocation whose admission is still being decided has timeout 0: wait for it too.
            if running.timeout_s <= seconds:
                running.done.wait(max(0.0, deadline - time.monotonic()))

    def in_flight(self) -> int:
        """How many invocations are running now."""
        with self._lock:
            return len(self._running)
