"""An interrupted rehearsal stops at once and leaves nothing running.

Ctrl-C (SIGINT) and SIGTERM become :class:`Interrupted` in the main thread, so the rehearsal unwinds
through its clean-up as after any error: the sandbox host is killed (and every process in it), the
ElastiCache stand-in and the throwaway servers stop, the engine stops its executions (an execution
waiting at the approval gate too: ``local_engine/stepfunctions/stop_execution.py``) and the workdir
is released. Python's default SIGTERM ends the process without any of that. A second signal while
the clean-up runs is ignored, so the clean-up finishes; SIGKILL cannot be caught (the sandbox still
dies with its owner: ``sandbox_host.py``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The rehearsal was interrupted by ``signal_number`` (a KeyboardInterrupt: no ``except
    Exception`` on the way swallows it)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended (130, 143)."""
        return 128 + self.signal_number


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside, SIGINT and SIGTERM raise :class:`Interrupted` once; later ones are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    interrupted = False

    def interrupt(number: int, _frame: FrameType | None) -> None:
        nonlocal interrupted
        if interrupted:
            return  # the clean-up is running: let it finish
        interrupted = True
        raise Interrupted(number)

    for number in SIGNALS:
        signal.signal(number, interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
