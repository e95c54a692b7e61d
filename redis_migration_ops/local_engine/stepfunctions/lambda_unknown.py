"""A Lambda function error without an ``errorType`` is ``Lambda.Unknown``, as Step Functions names it.

What AWS does: "Unhandled errors in Lambda are reported as Lambda.Unknown in the error output.
These include out-of-memory errors and function timeouts. You can match on Lambda.Unknown,
States.ALL, or States.TaskFailed to handle these errors."
(https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html)

Gap: moto 5.2.5's ``StateTaskServiceLambda._from_error`` names such an error ``Exception`` (it
looks for ``errorType`` in the payload and falls back to that word), so a Catch on
``Lambda.Unknown`` never matches locally.

Fill: a function error whose payload has no ``errorType`` (a timeout, see
:mod:`~redis_migration_ops.local_engine.lambda_.execution_limits`) fails the task as
``Lambda.Unknown``, the payload as its cause; every other error is moto's.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)

from redis_migration_ops.local_engine.moto_patch import MotoPatch

LAMBDA_UNKNOWN = "Lambda.Unknown"


def has_error_type(payload: str) -> bool:
    """Whether a function error's payload names its ``errorType``."""
    try:
        document = json.loads(payload)
    except (TypeError, ValueError):
        return False
    return isinstance(document, dict) and bool(document.get("errorType"))


class LambdaUnknownError(MotoPatch):
    """Gap and fill: see the module docstring."""

    def install(self) -> None:
        original = StateTaskServiceLambda._from_error

        def from_error(task: StateTaskServiceLambda, env: Any, ex: Exception) -> FailureEvent:
            payload = getattr(ex, "payload", "")
            unhandled = isinstance(ex, lambda_eval_utils.LambdaFunctionErrorException)
            if unhandled and not has_error_type(payload):
                failed: Any = TaskFailedEventDetails(
                    error=LAMBDA_UNKNOWN,
                    cause=payload,
                    resource=task._get_sfn_resource(),
                    resourceType=task._get_sfn_resource_type(),
                )
                details: Any = {"taskFailedEventDetails": failed}
                return FailureEvent(
                    env=env,
                    error_name=CustomErrorName(LAMBDA_UNKNOWN),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=details,
                )
            return original(task, env, ex)

        self._replace(StateTaskServiceLambda, "_from_error", from_error)
