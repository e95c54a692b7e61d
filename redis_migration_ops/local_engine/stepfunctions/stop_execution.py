"""StopExecution ends an execution at once, also one waiting for a task token.

AWS: ``StopExecution`` stops a running Standard execution; it ends ``ABORTED``, and a task token it
was waiting on can no longer be answered
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
The approval gate (``WaitForApproval``, ``.waitForTaskToken`` with ``TimeoutSeconds`` of an hour) is
such a wait: an operator who stops a run there expects it to stop.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from redis_migration_ops.local_engine.moto_patch import MotoPatch


class StopExecutionWakesTaskTokens(MotoPatch):
    """Gap: moto 5.2.5's ``StopExecution`` marks the execution stopped, but a state waiting for a task
    token sleeps until its ``TimeoutSeconds`` (an hour for the approval gate), and the execution stays
    ``RUNNING`` until then: the engine's shutdown then waits, and a stopped rehearsal does not stop.

    Fill: ``StopExecution`` also wakes every task-token wait of the execution (moto's
    ``CallbackEndpoint.interrupt_all``, what moto itself does when a task ends), so the interpreter
    sees the stop and the execution ends ``ABORTED`` at once; and a stopped execution stays stopped
    (moto's ``Environment.set_error`` would turn the woken task's error into ``FAILED``). What still
    differs: moto records the woken task as timed out (``TaskTimedOut``) just before
    ``ExecutionAborted``.
    """

    def install(self) -> None:
        original_stop = ExecutionWorker.stop
        original_set_error = Environment.set_error

        def stop(worker: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
            original_stop(worker, stop_date=stop_date, error=error, cause=cause)
            # The pool maps each token this execution handed out to the endpoint its task waits on.
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

        def set_error(env: Any, error: Any) -> None:
            if isinstance(env.program_state(), ProgramStopped):
                return  # stopped is final: the woken task's error does not turn it into FAILED
            original_set_error(env, error)

        self._replace(ExecutionWorker, "stop", stop)
        self._replace(Environment, "set_error", set_error)
