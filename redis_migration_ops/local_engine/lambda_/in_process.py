"""Lambda invocations run the template's real handlers in this process."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from redis_migration_ops.local_engine.iam.caller_identity import Principal, acting_as
from redis_migration_ops.local_engine.lambda_.execution_limits import (
    out_of_memory_payload,
    past_timeout,
    timed_out_payload,
)
from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.template import FunctionSpec

LOG = logging.getLogger(__name__)


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
        self._principals: dict[str, Principal | None] = {}
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()
        self._module_names: list[str] = []

    def register(self, spec: FunctionSpec, principal: Principal | None = None) -> None:
        """Route invocations of ``spec.name`` to its handler, run as ``principal`` (its role)."""
        with self._lock:
            self._specs[spec.name] = spec
            self._principals[spec.name] = principal

    def principal_of(self, spec: FunctionSpec) -> Principal | None:
        """The role the function's handler calls AWS as (None: not evaluated)."""
        with self._lock:
            return self._principals.get(spec.name)

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
                    target=run_handler, args=(registry, spec, body), name=f"event-{spec.name}", daemon=True
                )
                worker.start()
                return b""
            payload, error = run_handler(registry, spec, body)
            if error:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
            return payload

        self._replace(LambdaSimpleBackend, "invoke", invoke)


def run_handler(registry: FunctionRegistry, spec: FunctionSpec, body: Any) -> tuple[bytes, bool]:
    """Call the handler; return (response bytes, whether it is a function error). A handler that
    ran past its timeout or out of memory answers as Lambda does (:mod:`.execution_limits`)."""
    started = time.monotonic()
    try:
        raw = body.decode("utf-8") if isinstance(body, bytes | bytearray) else (body or "")
        event = json.loads(raw) if raw else {}
        handler = registry.handler_for(spec)
        # The timeout counts the handler's run, not the module's import (Lambda's init phase).
        started = time.monotonic()
        lambda_context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_size,
            timeout_s=spec.timeout,
        )
        with acting_as(registry.principal_of(spec)):
            result = handler(event, lambda_context)
    except MemoryError:
        LOG.info("handler of %s ran out of memory: answered as Lambda's sandbox kill", spec.name)
        return out_of_memory_payload(spec.memory_size), True
    except Exception as error:  # the handler's failure is the function's answer, as in Lambda
        if past_timeout(started, spec.timeout):
            return timed_out_payload(spec.timeout), True
        LOG.info("handler of %s raised %s", spec.name, type(error).__name__, exc_info=True)
        return _function_error(type(error).__name__, str(error)), True
    if past_timeout(started, spec.timeout):
        LOG.info("handler of %s ran past its %s s timeout: answered as Lambda's", spec.name, spec.timeout)
        return timed_out_payload(spec.timeout), True
    try:
        return json.dumps(result).encode("utf-8"), False
    except (TypeError, ValueError) as error:
        return _function_error("Runtime.MarshalError", f"Unable to marshal response: {error}"), True


def _function_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode("utf-8")
