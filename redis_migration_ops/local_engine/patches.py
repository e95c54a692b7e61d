"""The moto 5.2.5 gaps the local engine fills, one named patch each.

Every patch hooks a moto internal (pinned: ``moto==5.2.5``), documents which gap it fills, installs
with :meth:`MotoPatch.install` and leaves moto exactly as it was with :meth:`MotoPatch.uninstall`.
Product code never knows it runs here: the handlers see ordinary AWS behaviour.

Checked and *not* patched: moto 5.2.5 already answers ``InvalidPermission.Duplicate`` for a
duplicate security-group ingress rule (see the test ``test_moto_refuses_duplicate_ingress``).
"""

from __future__ import annotations

import abc
import copy
import datetime
import hashlib
import importlib.util
import ipaddress
import itertools
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import jsonata
from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import PreconditionFailedException
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ssm import models as ssm_models
from moto.ssm import responses as ssm_responses
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as intrinsic_jsonata
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval import states as sfn_states
from moto.stepfunctions.parser.asl.eval import variable_store as sfn_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from redis_migration_ops.local_engine.template import FunctionSpec

LOG = logging.getLogger(__name__)

SSM_OUTPUT_LIMIT = 2500
INJECTED_ERROR = "RehearsalInjectedFailure"
_MISSING = object()


class MotoPatch(abc.ABC):
    """A reversible replacement of attributes of moto (or stdlib) objects."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    @property
    def installed(self) -> bool:
        """Whether the patch is in place."""
        return bool(self._saved)

    def _replace(self, owner: Any, attribute: str, value: Any) -> None:
        if not hasattr(owner, attribute):
            raise RuntimeError(f"{type(self).__name__}: {owner!r} has no {attribute}; is it moto 5.2.5?")
        own = vars(owner).get(attribute, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        self._saved.append((owner, attribute, own))
        setattr(owner, attribute, value)

    def _add(self, owner: Any, attribute: str, value: Any) -> None:
        if hasattr(owner, attribute):
            raise RuntimeError(f"{type(self).__name__}: {owner!r} already has {attribute}; moto changed")
        self._saved.append((owner, attribute, _MISSING))
        setattr(owner, attribute, value)

    @abc.abstractmethod
    def install(self) -> None:
        """Put the patch in place."""

    def uninstall(self) -> None:
        """Restore every replaced attribute, last first."""
        while self._saved:
            owner, attribute, original = self._saved.pop()
            if original is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


# --------------------------------------------------------------------------------------------------
# 1. InProcessLambda
# --------------------------------------------------------------------------------------------------


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local-engine"
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout, as in Lambda."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionRegistry:
    """The template's functions and their handlers, imported once each by file path."""

    def __init__(self) -> None:
        self._specs: dict[str, FunctionSpec] = {}
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()
        self._module_names: list[str] = []

    def register(self, spec: FunctionSpec) -> None:
        """Route invocations of ``spec.name`` to its handler."""
        with self._lock:
            self._specs[spec.name] = spec

    def spec_for(self, function_name: str) -> FunctionSpec | None:
        """The spec of a registered function given by name, partial or full ARN."""
        name = function_name
        if name.startswith("arn:"):
            name = name.split(":")[6]
        elif ":" in name:
            name = name.split(":")[0]
        with self._lock:
            return self._specs.get(name)

    def handler_for(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        """Import the handler module from ``CodeUri`` (under a unique module name) once."""
        with self._lock:
            cached = self._handlers.get(spec.name)
            if cached is not None:
                return cached
            module_path, _, attribute = spec.handler.rpartition(".")
            if not module_path or not attribute:
                raise ValueError(f"function {spec.logical_id}: bad Handler {spec.handler!r}")
            source = spec.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
            module = self._import(spec, source, module_path)
            handler = getattr(module, attribute, None)
            if not callable(handler):
                raise TypeError(f"function {spec.logical_id}: {source} has no callable {attribute}")
            self._handlers[spec.name] = handler
            typed: Callable[[Any, Any], Any] = handler
            return typed

    def _import(self, spec: FunctionSpec, source: Path, module_path: str) -> ModuleType:
        if not source.is_file():
            raise FileNotFoundError(f"function {spec.logical_id}: handler file not found: {source}")
        unique = f"_local_engine_fn_{spec.logical_id}_{module_path.replace('.', '_')}"
        module_spec = importlib.util.spec_from_file_location(unique, source)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {source}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[unique] = module
        self._module_names.append(unique)
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[unique]
            raise
        return module

    def forget_modules(self) -> None:
        """Drop the imported handler modules from ``sys.modules``."""
        with self._lock:
            for name in self._module_names:
                sys.modules.pop(name, None)
            self._module_names.clear()
            self._handlers.clear()


class InProcessLambda(MotoPatch):
    """Gap: moto's Docker-less Lambda (``LambdaSimpleBackend.invoke``) echoes the payload.

    Fill: an invocation of a function deployed from the template calls its real handler in this
    process with the JSON payload and a :class:`LambdaContext`; an exception comes back as
    ``x-amz-function-error: Unhandled`` with ``{"errorType", "errorMessage", "stackTrace"}`` like
    Lambda, so Step Functions reports ``errorType`` as the error name. Other functions (created at
    run time, e.g. the team's client functions) keep moto's default behaviour.
    """

    def __init__(self, registry: FunctionRegistry) -> None:
        super().__init__()
        self._registry = registry

    def install(self) -> None:
        original = LambdaSimpleBackend.invoke
        registry = self._registry

        def invoke(  # noqa: PLR0917 (moto's signature)
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            spec = registry.spec_for(function_name)
            if spec is None:
                return original(backend, function_name, qualifier, body, headers, response_headers)
            backend.get_function(function_name, qualifier)  # moto's own not-found answer
            invocation_type = (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse")
            if invocation_type == "DryRun":
                return b""
            if invocation_type == "Event":
                worker = threading.Thread(
                    target=_run_handler, args=(registry, spec, body), name=f"event-{spec.name}", daemon=True
                )
                worker.start()
                return b""
            payload, error = _run_handler(registry, spec, body)
            if error:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
            return payload

        self._replace(LambdaSimpleBackend, "invoke", invoke)


def _run_handler(registry: FunctionRegistry, spec: FunctionSpec, body: Any) -> tuple[bytes, bool]:
    """Call the handler; return (response bytes, whether it is a function error)."""
    try:
        raw = body.decode("utf-8") if isinstance(body, bytes | bytearray) else (body or "")
        event = json.loads(raw) if raw else {}
        handler = registry.handler_for(spec)
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_size,
            timeout_s=spec.timeout,
        )
        result = handler(event, context)
    except Exception as error:  # the handler's failure is the function's answer, as in Lambda
        LOG.info("handler of %s raised %s", spec.name, type(error).__name__, exc_info=True)
        return _function_error(type(error).__name__, str(error)), True
    try:
        return json.dumps(result).encode("utf-8"), False
    except (TypeError, ValueError) as error:
        return _function_error("Runtime.MarshalError", f"Unable to marshal response: {error}"), True


def _function_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode("utf-8")


# --------------------------------------------------------------------------------------------------
# 2. JSONataEvaluator
# --------------------------------------------------------------------------------------------------


def _json_native(value: Any) -> Any:
    """jsonata-python answers with its own list type and with floats for whole numbers at times."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, Mapping):
        return {str(key): _json_native(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_native(item) for item in value]
    raise moto_jsonata.JSONataException(
        "States.QueryEvaluationError", f"JSONata returned a value that is not JSON: {type(value).__name__}"
    )


def _hash(value: Any, algorithm: Any) -> str:
    algorithms = {
        "MD5": "md5",
        "SHA-1": "sha1",
        "SHA-256": "sha256",
        "SHA-384": "sha384",
        "SHA-512": "sha512",
    }
    if algorithm not in algorithms:
        raise ValueError(f"$hash: unsupported algorithm {algorithm!r}")
    return hashlib.new(algorithms[algorithm], str(value).encode("utf-8")).hexdigest()


class _BoundValues:
    """Variable values handed to jsonata-python as bindings instead of as JSONata source text.

    moto embeds every variable's JSON value into the expression text (``($plan := {...}; expr)``)
    and evaluates that; jsonata-python parses in pure Python, so a large ``$plan`` made every
    evaluation slow and a Map over N functions cost O(N^2). The encoder now registers each value
    and writes only a reference (``$plan := $__v42;``); the evaluator binds the references.
    Bounded: moto re-evaluates a composed expression at most a couple of times right away (its
    output validations), so only recent values are needed.
    """

    LIMIT = 20_000
    PATTERN = re.compile(r"\$(__v[0-9]+)\b")

    def __init__(self) -> None:
        self._values: OrderedDict[str, Any] = OrderedDict()
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def register(self, value: Any) -> str:
        name = f"__v{next(self._ids)}"
        with self._lock:
            self._values[name] = value
            while len(self._values) > self.LIMIT:
                self._values.popitem(last=False)
        return name

    def bindings_for(self, expression: str) -> dict[str, Any]:
        with self._lock:
            return {name: self._values[name] for name in self.PATTERN.findall(expression)}


_BOUND = _BoundValues()


def evaluate_jsonata(expression: str) -> Any:
    """Evaluate a complete JSONata expression with jsonata-python; the result is plain JSON."""
    try:
        compiled = jsonata.Jsonata(expression)
        compiled.register_lambda("uuid", lambda: str(uuid.uuid4()))
        compiled.register_lambda("hash", _hash)
        result = compiled.evaluate(None, _BOUND.bindings_for(expression))
    except KeyError as error:
        raise moto_jsonata.JSONataException("States.Runtime", f"variable value expired: {error}") from error
    except Exception as error:
        raise moto_jsonata.JSONataException("States.QueryEvaluationError", str(error)) from error
    return _json_native(result)


def encode_variable_declarations(bindings: dict[str, Any]) -> str:
    """moto's encoder, but each value is bound by reference (see :class:`_BoundValues`).

    The JSON round trip keeps moto's conversions (the context object holds datetimes) and gives
    the evaluation its own copy, so nothing it does can change the stored variable.
    """
    parts = []
    for reference, value in bindings.items():
        plain = json.loads(to_json_str(value, separators=(",", ":")))
        parts.append(f"{reference}:=${_BOUND.register(plain)};")
    return "".join(parts)


class JSONataEvaluator(MotoPatch):
    """Gap: moto's JSONata evaluator is a stub (``jsonata._eval_jsonata`` is ``None``).

    Fill: evaluate with jsonata-python and convert the result to JSON-native values. Also:
    string variables are embedded escaped (moto breaks on a ``"`` or ``\\`` in a variable value),
    and ``$uuid``/``$hash`` are real (moto declares them as stubs returning a message).
    """

    def install(self) -> None:
        self._replace(moto_jsonata, "_eval_jsonata", evaluate_jsonata)
        for module in (moto_jsonata, sfn_states, sfn_variable_store):
            self._replace(module, "encode_jsonata_variable_declarations", encode_variable_declarations)
        declarations = dict(intrinsic_jsonata._DECLARATION_BY_VARIABLE_REFERENCE)
        for stub in ("$uuid", "$hash"):
            declarations.pop(stub)
        self._replace(intrinsic_jsonata, "_DECLARATION_BY_VARIABLE_REFERENCE", declarations)


# --------------------------------------------------------------------------------------------------
# 3. InstantWaits
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaitRecord:
    """A wait the workflow asked for: a Wait state or a Retry backoff."""

    state_name: str
    kind: str  # "Wait" | "Retry"
    seconds: float


class WaitRecorder:
    """Thread-safe list of requested waits."""

    def __init__(self) -> None:
        self._records: list[WaitRecord] = []
        self._lock = threading.Lock()

    def add(self, record: WaitRecord) -> None:
        """Record one requested wait."""
        with self._lock:
            self._records.append(record)

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


# --------------------------------------------------------------------------------------------------
# 4. FailureInjection
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# 5. SandboxSsm
# --------------------------------------------------------------------------------------------------


class CommandResult(Protocol):
    """What a sandbox answers for one command run."""

    @property
    def exit_code(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


class Sandbox(Protocol):
    """A local stand-in for an EC2 instance that SSM Run Command reaches."""

    def run_command(self, commands: list[str], timeout_s: float) -> CommandResult: ...


@dataclass(frozen=True)
class SentCommand:
    """What one ``SendCommand`` carried (so tests can check no secret travels)."""

    command_id: str
    document_name: str
    instance_ids: list[str]
    parameters: dict[str, list[str]]
    comment: str


class SsmSandboxes:
    """Registered sandboxes, sent commands and their running threads."""

    def __init__(self) -> None:
        self.sandboxes: dict[str, Sandbox] = {}
        self.sent: list[SentCommand] = []
        self.threads: list[threading.Thread] = []
        self.registered_at: dict[str, datetime.datetime] = {}
        self.lock = threading.RLock()

    def register(self, instance_id: str, sandbox: Sandbox) -> None:
        """Route commands for ``instance_id`` to ``sandbox``."""
        with self.lock:
            self.sandboxes[instance_id] = sandbox
            self.registered_at[instance_id] = datetime.datetime.now(datetime.UTC)

    def wait_idle(self, timeout_s: float) -> None:
        """Block up to ``timeout_s`` while a sandbox command is still running (see InstantWaits)."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            running = [thread for thread in self.threads if thread.is_alive()]
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))

    def join(self, deadline: float) -> list[str]:
        """Wait for running commands until ``deadline`` (monotonic); answer the threads still alive."""
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in threads if thread.is_alive()]


def _truncate(text: str) -> str:
    return text[:SSM_OUTPUT_LIMIT]


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


class SandboxSsm(MotoPatch):
    """Gap: moto's ``SendCommand`` reports ``Success`` at once and runs nothing;
    ``ListCommandInvocations`` and ``DescribeInstanceInformation`` are not implemented.

    Fill: for an instance registered as a sandbox, ``AWS-RunShellScript`` runs
    ``parameters["commands"]`` on the sandbox in a background thread; the invocation is
    ``InProgress`` until it ends, then ``Success``/``Failed``/``TimedOut`` with the exit code and
    the output truncated to 2,500 characters as SSM does. ``DescribeInstanceInformation`` answers
    ``Online`` for sandboxes. Every ``SendCommand`` is recorded. Other instances keep moto's
    behaviour. Also fixed: moto sends a command without ``Targets`` to every instance it knows
    (``Command._get_instance_ids_from_targets`` filters EC2 with no filter), so a command for one
    instance would run on every sandbox.
    """

    def __init__(self, state: SsmSandboxes) -> None:
        super().__init__()
        self._state = state

    def install(self) -> None:
        state = self._state
        backend_cls = ssm_models.SimpleSystemManagerBackend
        original_send = backend_cls.send_command
        original_get = backend_cls.get_command_invocation

        def send_command(backend: Any, **kwargs: Any) -> Any:
            command = original_send(backend, **kwargs)
            with state.lock:
                state.sent.append(
                    SentCommand(
                        command_id=command.command_id,
                        document_name=str(command.document_name),
                        instance_ids=list(command.instance_ids),
                        parameters=copy.deepcopy(command.parameters),
                        comment=str(command.comment or ""),
                    )
                )
                targets = [iid for iid in command.instance_ids if iid in state.sandboxes]
                if targets:
                    command.status = "InProgress"
                    command.status_details = "InProgress"
                    command.completed_count = len(command.instance_ids) - len(targets)
                for instance_id in targets:
                    invocation = _find_invocation(command, instance_id)
                    invocation.update(
                        Status="InProgress",
                        StatusDetails="InProgress",
                        ResponseCode=-1,
                        ExecutionEndDateTime="",
                        ExecutionElapsedTime="",
                    )
                    worker = threading.Thread(
                        target=_run_on_sandbox,
                        args=(state, command, instance_id),
                        name=f"ssm-{command.command_id}-{instance_id}",
                        daemon=True,
                    )
                    state.threads.append(worker)
                    worker.start()
            return command

        def get_command_invocation(backend: Any, command_id: str, instance_id: str, plugin_name: Any) -> Any:
            with state.lock:
                return copy.deepcopy(original_get(backend, command_id, instance_id, plugin_name))

        def list_command_invocations(response: Any) -> Any:
            command_id = response._get_param("CommandId")
            instance_id = response._get_param("InstanceId")
            details = bool(response._get_param("Details", False))
            backend = response.ssm_backend
            with state.lock:
                commands = backend.list_commands(command_id, None)
                rows = [
                    _invocation_summary(command, invocation, details)
                    for command in commands
                    for invocation in command.invocations
                    if instance_id is None or invocation["InstanceId"] == instance_id
                ]
            return ActionResult({"CommandInvocations": rows})

        def describe_instance_information(response: Any) -> Any:
            wanted: set[str] | None = None
            for item in response._get_param("Filters") or []:
                if item.get("Key") == "InstanceIds":
                    wanted = set(item.get("Values") or [])
            for item in response._get_param("InstanceInformationFilterList") or []:
                if item.get("key") == "InstanceIds":
                    wanted = set(item.get("valueSet") or [])
            backend = response.ssm_backend
            with state.lock:
                instance_ids = sorted(state.sandboxes)
                registered = dict(state.registered_at)
            rows = [
                _instance_information(backend, iid, registered[iid])
                for iid in instance_ids
                if wanted is None or iid in wanted
            ]
            return ActionResult({"InstanceInformationList": rows})

        original_targets = ssm_models.Command._get_instance_ids_from_targets

        def instance_ids_from_targets(command: Any) -> list[str]:
            # moto filters EC2 with {} when Targets is empty, which selects *every* instance.
            return list(original_targets(command)) if command.targets else []

        self._replace(ssm_models.Command, "_get_instance_ids_from_targets", instance_ids_from_targets)
        self._replace(backend_cls, "send_command", send_command)
        self._replace(backend_cls, "get_command_invocation", get_command_invocation)
        response_cls = ssm_responses.SimpleSystemManagerResponse
        self._add(response_cls, "list_command_invocations", list_command_invocations)
        self._add(response_cls, "describe_instance_information", describe_instance_information)


def _find_invocation(command: Any, instance_id: str) -> dict[str, Any]:
    for invocation in command.invocations:
        if invocation["InstanceId"] == instance_id:
            found: dict[str, Any] = invocation
            return found
    raise KeyError(instance_id)


def _run_on_sandbox(state: SsmSandboxes, command: Any, instance_id: str) -> None:
    with state.lock:
        sandbox = state.sandboxes[instance_id]
    parameters: dict[str, list[str]] = command.parameters or {}
    started = time.monotonic()
    timeout_s = float((parameters.get("executionTimeout") or ["3600"])[0])
    if command.document_name != "AWS-RunShellScript":
        status, code = "Failed", -1
        stdout, stderr = "", f"the local engine runs only AWS-RunShellScript, not {command.document_name}"
    else:
        try:
            result = sandbox.run_command(list(parameters.get("commands") or []), timeout_s)
            code, stdout, stderr = int(result.exit_code), str(result.stdout), str(result.stderr)
            status = "Success" if code == 0 else "Failed"
            if getattr(result, "timed_out", False):
                status = "TimedOut"
        except TimeoutError as error:
            status, code, stdout, stderr = "TimedOut", -1, "", f"execution timed out: {error}"
        except Exception as error:  # the sandbox broke: report it as the command's failure
            LOG.warning("sandbox %s failed to run a command", instance_id, exc_info=True)
            status, code, stdout, stderr = "Failed", -1, "", f"{type(error).__name__}: {error}"
    elapsed = time.monotonic() - started
    with state.lock:
        invocation = _find_invocation(command, instance_id)
        invocation.update(
            Status=status,
            StatusDetails="ExecutionTimedOut" if status == "TimedOut" else status,
            ResponseCode=code,
            StandardOutputContent=_truncate(stdout),
            StandardErrorContent=_truncate(stderr),
            ExecutionElapsedTime=_iso_duration(elapsed),
            ExecutionEndDateTime=datetime.datetime.now(datetime.UTC).isoformat(),
        )
        if status != "Success":
            command.error_count += 1
        command.completed_count += 1
        done = [inv for inv in command.invocations if inv["Status"] != "InProgress"]
        if len(done) == len(command.invocations):
            statuses = {inv["Status"] for inv in command.invocations}
            command.status = (
                "Success"
                if statuses == {"Success"}
                else ("TimedOut" if statuses == {"TimedOut"} else "Failed")
            )
            command.status_details = command.status


def _invocation_summary(command: Any, invocation: dict[str, Any], details: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "CommandId": command.command_id,
        "InstanceId": invocation["InstanceId"],
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": command.requested_date_time,
        "Status": invocation["Status"],
        "StatusDetails": invocation["StatusDetails"],
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
    }
    if details:
        output = invocation.get("StandardOutputContent", "")
        error = invocation.get("StandardErrorContent", "")
        combined = output + (f"\n----------ERROR-------\n{error}" if error else "")
        row["CommandPlugins"] = [
            {
                "Name": invocation.get("PluginName", "aws:runShellScript"),
                "Status": invocation["Status"],
                "StatusDetails": invocation["StatusDetails"],
                "ResponseCode": invocation["ResponseCode"],
                "Output": _truncate(combined),
                "StandardOutputUrl": "",
                "StandardErrorUrl": "",
            }
        ]
    return row


def _instance_information(backend: Any, instance_id: str, registered: datetime.datetime) -> dict[str, Any]:
    address = ""
    try:
        instance = ec2_backends[backend.account_id][backend.region_name].get_instance(instance_id)
        address = str(instance.private_ip or "")
    except Exception:  # a sandbox need not be an EC2 instance moto knows
        LOG.debug("sandbox %s is not an EC2 instance in moto", instance_id)
    return {
        "InstanceId": instance_id,
        "PingStatus": "Online",
        "LastPingDateTime": datetime.datetime.now(datetime.UTC),
        "AgentVersion": "3.3.0.0",
        "IsLatestVersion": True,
        "PlatformType": "Linux",
        "PlatformName": "Local sandbox",
        "PlatformVersion": "0",
        "ResourceType": "EC2Instance",
        "IPAddress": address,
        "ComputerName": instance_id,
        "RegistrationDate": registered,
    }


# --------------------------------------------------------------------------------------------------
# 6. LambdaRevisionId
# --------------------------------------------------------------------------------------------------


class LambdaRevisionId(MotoPatch):
    """Gap: moto's functions have no ``RevisionId`` and ``UpdateFunctionConfiguration`` ignores it.

    Fill: each function reports a ``RevisionId`` that changes on every configuration or code
    update; an update with a ``RevisionId`` that is not the current one is refused with
    ``PreconditionFailedException`` (HTTP 412) like Lambda. (``LastUpdateStatus: Successful`` is
    already reported by ``GetFunction``/``GetFunctionConfiguration``, so the
    ``function_updated_v2`` waiter works.)
    """

    _ATTRIBUTE = "_local_engine_revision_id"

    def install(self) -> None:
        lock = threading.RLock()  # get_configuration runs inside the update, under the lock
        attribute = self._ATTRIBUTE
        function_cls = lambda_models.LambdaFunction
        backend_cls = lambda_models.LambdaBackend
        original_configuration = function_cls.get_configuration
        original_update_configuration = backend_cls.update_function_configuration
        original_update_code = backend_cls.update_function_code

        def revision_of(function: Any) -> str:
            with lock:
                if not hasattr(function, attribute):
                    setattr(function, attribute, str(uuid.uuid4()))
                return str(getattr(function, attribute))

        def get_configuration(function: Any, on_create: bool = False) -> dict[str, Any]:
            configuration: dict[str, Any] = original_configuration(function, on_create=on_create)
            configuration["RevisionId"] = revision_of(function)
            return configuration

        def update_function_configuration(
            backend: Any, function_name: str, qualifier: str, body: dict[str, Any]
        ) -> dict[str, Any] | None:
            function = backend.get_function(function_name, qualifier)
            with lock:
                expected = body.get("RevisionId")
                current = getattr(function, attribute, None)
                if expected is not None and expected != current:
                    raise PreconditionFailedException(
                        "The Revision Id provided does not match the latest Revision Id. "
                        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
                    )
                original_update_configuration(backend, function_name, qualifier, body)
                setattr(function, attribute, str(uuid.uuid4()))
            return get_configuration(function)

        def update_function_code(
            backend: Any, function_name: str, qualifier: str, body: dict[str, Any]
        ) -> Any:
            function = backend.get_function(function_name, qualifier)
            with lock:
                expected = body.get("RevisionId")
                if expected is not None and expected != getattr(function, attribute, None):
                    raise PreconditionFailedException(
                        "The Revision Id provided does not match the latest Revision Id. "
                        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
                    )
                result = original_update_code(backend, function_name, qualifier, body)
                setattr(function, attribute, str(uuid.uuid4()))
            return result

        self._replace(function_cls, "get_configuration", get_configuration)
        self._replace(backend_cls, "update_function_configuration", update_function_configuration)
        self._replace(backend_cls, "update_function_code", update_function_code)


# --------------------------------------------------------------------------------------------------
# 8. FunctionVpcId
# --------------------------------------------------------------------------------------------------


class FunctionVpcId(MotoPatch):
    """Gap: moto reports a fixed fake ``VpcConfig.VpcId`` (``vpc-123abc``) for every function.

    Fill: report the VPC of the function's subnets (from moto's EC2 backend). When the subnets are
    unknown to moto, moto's answer stands.
    """

    def install(self) -> None:
        function_cls = lambda_models.LambdaFunction
        original: property = vars(function_cls)["vpc_config"]

        def vpc_config(function: Any) -> dict[str, Any] | None:
            config: dict[str, Any] | None = original.fget(function) if original.fget else None
            if not config or not config.get("SubnetIds"):
                return config
            vpc_ids = _vpcs_of_subnets(function.account_id, function.region, list(config["SubnetIds"]))
            if len(vpc_ids) == 1:
                config["VpcId"] = vpc_ids.pop()
            return config

        self._replace(function_cls, "vpc_config", property(vpc_config, original.fset))


def _vpcs_of_subnets(account_id: str, region: str, subnet_ids: list[str]) -> set[str]:
    ec2 = ec2_backends[account_id][region]
    known = {subnet.id: subnet.vpc_id for subnet in ec2.describe_subnets()}
    if not all(subnet_id in known for subnet_id in subnet_ids):
        return set()
    return {known[subnet_id] for subnet_id in subnet_ids}


# --------------------------------------------------------------------------------------------------
# 9. NetworkGuard
# --------------------------------------------------------------------------------------------------


class AddressMap:
    """Sandbox addresses and the loopback forwarders that stand in for them."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, int], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, host: str, port: int, target: tuple[str, int]) -> None:
        """Send connections for ``host:port`` to ``target`` (which must be loopback)."""
        if not _is_loopback(target[0]):
            raise ValueError(f"a mapped address must lead to loopback, not {target[0]}")
        with self._lock:
            self._routes[(host, int(port))] = (target[0], int(target[1]))

    def lookup(self, host: str, port: int) -> tuple[str, int] | None:
        """The loopback target of ``host:port``, if mapped."""
        with self._lock:
            return self._routes.get((host, port))

    def items(self) -> Iterator[tuple[tuple[str, int], tuple[str, int]]]:
        """A snapshot of the routes."""
        with self._lock:
            return iter(list(self._routes.items()))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _port_number(port: Any) -> int | None:
    try:
        return int(port)
    except (TypeError, ValueError):
        return None


def _refused(host: Any, port: Any) -> ConnectionRefusedError:
    return ConnectionRefusedError(
        f"NetworkGuard (local engine): connection to {host}:{port} refused; only loopback and addresses "
        "registered with LocalEngine.map_address are reachable"
    )


class NetworkGuard(MotoPatch):
    """Gap: nothing stops a rehearsal from connecting to the private or public address moto reports.

    Fill: while installed, name resolution (``socket.getaddrinfo``, which ``create_connection`` and
    redis-py use) and ``socket.socket.connect``/``connect_ex`` only reach loopback; an address
    mapped with :meth:`AddressMap.add` is redirected to its loopback forwarder; anything else raises
    ``ConnectionRefusedError`` naming the guard before a packet is sent.
    """

    def __init__(self, routes: AddressMap) -> None:
        super().__init__()
        self._routes = routes

    def install(self) -> None:
        routes = self._routes
        original_getaddrinfo = socket.getaddrinfo
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex

        def getaddrinfo(  # noqa: PLR0917 (the stdlib's signature)
            host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
        ) -> Any:
            if host is None or host == "":
                return original_getaddrinfo(host, port, family, type, proto, flags)
            name = host.decode() if isinstance(host, bytes) else str(host)
            number = _port_number(port)
            target = routes.lookup(name, number) if number is not None else None
            if target is not None:
                return original_getaddrinfo(target[0], target[1], socket.AF_INET, type, proto, flags)
            if _is_loopback(name):
                return original_getaddrinfo(host, port, family, type, proto, flags)
            raise _refused(name, port)

        def checked_address(sock: socket.socket, address: Any) -> Any:
            if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
                return address
            host, port = str(address[0]), address[1]
            target = routes.lookup(host, int(port))
            if target is not None:
                if sock.family == socket.AF_INET6:
                    raise _refused(host, f"{port} (mapped to {target[0]}, which an IPv6 socket cannot reach)")
                return target
            if _is_loopback(host):
                return address
            raise _refused(host, port)

        def connect(sock: socket.socket, address: Any) -> None:
            original_connect(sock, checked_address(sock, address))

        def connect_ex(sock: socket.socket, address: Any) -> int:
            return int(original_connect_ex(sock, checked_address(sock, address)))

        self._replace(socket, "getaddrinfo", getaddrinfo)
        self._replace(socket.socket, "connect", connect)
        self._replace(socket.socket, "connect_ex", connect_ex)
