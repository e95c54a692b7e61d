"""Step Functions' 256 KiB limit on the data a state carries, and its uncatchable error.

What AWS enforces (Step Functions quotas, "Maximum input or output size for a task, state, or
execution": 256 KiB of data as a UTF-8 encoded string; it applies to a task's result, a state's or
the execution's output, and the input when scheduling a task, entering a state or starting an
execution):
https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html

- Over the limit inside an execution, the execution fails with ``States.DataLimitExceeded``, a
  *terminal* error that ``States.ALL`` cannot catch (nor retry):
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
- ``StartExecution``'s ``input`` has a length constraint of 262,144, "expressed as bytes in UTF-8
  encoding": a larger input is refused by the API (``ValidationException``), no execution starts.
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html

What moto 5.2.5 does: it checks a Task's result and a state's output, but with ``<`` (262,144
bytes exactly is refused), measures a string result without its JSON quotes and JSON with spaces
after separators, never checks a state's input, a Task's arguments or ``StartExecution``, and lets
``States.ALL`` (and an explicit ``States.DataLimitExceeded``) catch the error.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser import models as sfn_models
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state import state as sfn_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service

from redis_migration_ops.local_engine.moto_patch import MotoPatch

MAX_PAYLOAD_BYTES = 262_144
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"


def payload_bytes(value: Any) -> int:
    """The size AWS counts: ``value`` as compact JSON text, UTF-8 encoded."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def text_bytes(text: str) -> int:
    """The size of raw JSON text (an execution's input), UTF-8 encoded."""
    return len(text.encode("utf-8"))


def within_limit(value: Any) -> bool:
    """Whether ``value`` (a state's data) fits in 256 KiB."""
    return payload_bytes(value) <= MAX_PAYLOAD_BYTES


def _data_limit_failure(env: Any, state_name: str, what: str, size: int) -> FailureEventException:
    cause = (
        f"The {what} of the state/task '{state_name}' has a size of {size} bytes, exceeding the "
        f"maximum number of bytes service limit ({MAX_PAYLOAD_BYTES})."
    )
    details: Any = {"executionFailedEventDetails": {"error": DATA_LIMIT_EXCEEDED, "cause": cause}}
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded),
            event_type=HistoryEventType.ExecutionFailed,
            event_details=details,
        )
    )


class StateDataLimit(MotoPatch):
    """Gap: moto's size checks are partial and catchable (see the module docstring).

    Fill: every state's input (on entering it) and output, every Task's arguments and result are
    measured as compact UTF-8 JSON and may be at most 262,144 bytes; over it the execution fails
    with ``States.DataLimitExceeded``, which no Retry or Catch matches, ``States.ALL`` included.
    ``StartExecution`` with a larger input is refused with ``ValidationException``.
    """

    def install(self) -> None:
        def is_within_size_quota(value: Any) -> bool:
            return within_limit(value)

        for module in (sfn_state, state_task_lambda, state_task_service):
            self._replace(module, "is_within_size_quota", is_within_size_quota)

        original_body = sfn_state.CommonStateField._eval_body

        def eval_body(state: Any, env: Any) -> None:
            size = payload_bytes(env.states.get_input())
            if size > MAX_PAYLOAD_BYTES:
                raise _data_limit_failure(env, state.name, "input", size)
            original_body(state, env)

        self._replace(sfn_state.CommonStateField, "_eval_body", eval_body)

        original_before = state_task_service.StateTaskService._before_eval_execution

        def before_eval_execution(
            task: Any,
            env: Any,
            resource_runtime_part: Any,
            raw_parameters: dict[str, Any],
            state_credentials: Any,
        ) -> None:
            size = payload_bytes(raw_parameters)
            if size > MAX_PAYLOAD_BYTES:
                raise _data_limit_failure(env, task.name, "arguments", size)
            original_before(task, env, resource_runtime_part, raw_parameters, state_credentials)

        self._replace(state_task_service.StateTaskService, "_before_eval_execution", before_eval_execution)

        original_matches = error_equals_decl.ErrorEqualsDecl._eval_body

        def error_equals(decl: Any, env: Any) -> None:
            error_name = env.stack[-1]
            if isinstance(error_name, StatesErrorName) and error_name.error_name == DATA_LIMIT_EXCEEDED:
                env.stack.pop()
                env.stack.append(False)  # terminal: no Retry or Catch matches it
                return
            original_matches(decl, env)

        self._replace(error_equals_decl.ErrorEqualsDecl, "_eval_body", error_equals)

        backend_cls = sfn_models.StepFunctionsParserBackend
        original_start = backend_cls.start_execution

        def start_execution(
            backend: Any,
            state_machine_arn: str,
            name: Any = None,
            execution_input: Any = None,
            trace_header: Any = None,
        ) -> Any:
            if execution_input is not None and text_bytes(str(execution_input)) > MAX_PAYLOAD_BYTES:
                raise ValidationException(
                    "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {MAX_PAYLOAD_BYTES}"
                )
            return original_start(backend, state_machine_arn, name, execution_input, trace_header)

        self._replace(backend_cls, "start_execution", start_execution)
