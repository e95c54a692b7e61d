"""Who is calling AWS: the function whose handler runs, or the state machine running a task.

On AWS every call carries the credentials of a role: a Lambda function's execution role, or a
state machine's role for its service integrations (lambda:invoke, sns:publish, ...). In the local
engine everything runs in one process with one set of fake credentials, so the caller is kept in
a context variable instead: the in-process Lambda sets it while a handler runs, the interpreter
while a Task state runs. Calls made outside both (the test harness, the rehearsal's own set-up and
checks, the operator CLI) have no principal and are trusted.

Threads do not inherit context variables, so while the engine runs, a thread started by a caller
(``threading.Thread.start``) and work submitted to a ``ThreadPoolExecutor`` run in a copy of the
submitter's context: a handler's worker threads call AWS as that handler.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from redis_migration_ops.local_engine.iam.policy import Statement
from redis_migration_ops.local_engine.moto_patch import MotoPatch


@dataclass(frozen=True)
class Principal:
    """A role the engine evaluates calls for: the template's function or state machine."""

    name: str  # the template's logical id
    role_arn: str
    session_name: str
    statements: tuple[Statement, ...] = field(repr=False)
    account_id: str = "123456789012"

    @property
    def assumed_role_arn(self) -> str:
        """How AWS names the caller in an access-denied message."""
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{self.account_id}:assumed-role/{role_name}/{self.session_name}"


CURRENT_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "local_engine_principal", default=None
)


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Make the calls inside the block the calls of ``principal`` (None: trusted)."""
    token = CURRENT_PRINCIPAL.set(principal)
    try:
        yield
    finally:
        CURRENT_PRINCIPAL.reset(token)


def current_principal() -> Principal | None:
    """The principal the current code calls AWS as, if any."""
    return CURRENT_PRINCIPAL.get()


class ThreadContextPropagation(MotoPatch):
    """Gap: a thread started by a handler would call AWS with no principal, i.e. unchecked.

    Fill: ``Thread.start`` by a code that has a principal runs the thread in a copy of the
    starter's context; ``ThreadPoolExecutor.submit`` always runs the work in a copy of the
    submitter's context (its worker threads are shared between submitters).
    """

    def install(self) -> None:
        original_start = threading.Thread.start
        original_submit = ThreadPoolExecutor.submit

        def start(thread: threading.Thread) -> None:
            if CURRENT_PRINCIPAL.get() is not None:
                context = contextvars.copy_context()
                run = thread.run

                def run_in_context() -> None:
                    context.run(run)

                thread.run = run_in_context  # type: ignore[method-assign]
            original_start(thread)

        def submit(
            executor: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
        ) -> Future[Any]:
            context = contextvars.copy_context()
            return original_submit(executor, context.run, fn, *args, **kwargs)

        self._replace(threading.Thread, "start", start)
        self._replace(ThreadPoolExecutor, "submit", submit)
