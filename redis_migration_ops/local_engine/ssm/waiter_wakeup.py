"""Speed, not fidelity: the SDK's ``command_executed`` waiter polls again as soon as a sandbox
command finishes, instead of sleeping out its whole delay.

On AWS the host steps wait for their SSM command with boto3's waiter, one poll a second
(``host_commands.run_host_command``). Locally the sandbox runs a short script (the host's
inspection, its revert, the host services) in a fraction of that, and every run of the workflow
then sleeps about a second per host step for nothing. Here the waiter's sleep ends early when a
sandbox command finishes (``SsmSandboxes.command_finished``); it never sleeps longer than asked,
so the waiter's attempts and its time budget mean what they mean on AWS. Other waiters (Lambda's
``function_updated_v2``) sleep as before.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import botocore.waiter

from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.ssm.run_command import SsmSandboxes

_COMMAND_WAITER = "CommandExecuted"


class SsmWaiterWakeup(MotoPatch):
    """Gap: none (the result is the same); only the waiting is shorter. See the module doc."""

    def __init__(self, state: SsmSandboxes) -> None:
        super().__init__()
        self._state = state
        self._inside = threading.local()

    def install(self) -> None:
        state, inside = self._state, self._inside
        original_wait = botocore.waiter.Waiter.wait

        def wait(waiter: botocore.waiter.Waiter, **kwargs: Any) -> None:
            inside.command = waiter.name == _COMMAND_WAITER
            try:
                original_wait(waiter, **kwargs)
            finally:
                inside.command = False

        class _WaiterTime:
            """``time`` as botocore.waiter sees it (it imports the module ``time``): ``sleep`` may end
            when a command finishes."""

            def sleep(self, seconds: float) -> None:
                if getattr(inside, "command", False):
                    state.wait_for_a_finished_command(seconds)
                else:
                    time.sleep(seconds)

            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

        self._replace(botocore.waiter.Waiter, "wait", wait)
        self._replace(botocore.waiter, "time", _WaiterTime())
