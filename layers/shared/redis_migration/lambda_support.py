"""What every handler shares: the Powertools logger and tracer, settings and clients.

Handlers stay a few lines: parse the event into the step's input model, call one function of
the domain, return the output model as JSON. Importing this module is cheap on purpose (it is
on every function's cold start): creating the Logger touches no AWS API, AWS clients are built
on first use, and the X-Ray SDK behind the Tracer is imported on the first traced invocation
only (see :class:`LazyTracer`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Tracer
from pydantic import BaseModel

from redis_migration.aws import AwsClients
from redis_migration.errors import MigrationError
from redis_migration.models import Model, StackSettings, load_settings, parse_model

SERVICE = "redis-migration"

logger = Logger(service=SERVICE)

InputModel = TypeVar("InputModel", bound=Model)
Handler = TypeVar("Handler", bound=Callable[..., Any])


class LazyTracer:
    """The Powertools Tracer, built on the first invocation that is traced, not at import.

    Building a ``Tracer`` imports the X-Ray SDK (about 185 ms here, more on a small Lambda) and
    patches botocore, even where tracing then turns itself off (tests, the local engine). This
    wrapper decides on the first call instead, with Powertools' own rule (in Lambda, not under
    SAM local, ``POWERTOOLS_TRACE_DISABLED`` not set): when tracing is on, the shared Tracer is
    built once and wraps the handler exactly as ``@tracer.capture_lambda_handler`` would; when
    it is off, the handler runs as it is and the SDK is never imported. Clients are built inside
    the handler, after the patching, so their calls are still traced. (The rule is Powertools'
    ``Tracer._is_tracer_disabled``, a private helper: the version is pinned, and
    tests/unit/test_cold_start.py runs a handler both ways.)
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._tracer: Tracer | None = None
        self._decided = False

    def get(self) -> Tracer | None:
        """The shared Tracer, built on first use; ``None`` while tracing is off."""
        with self._lock:
            if not self._decided:
                if not Tracer._is_tracer_disabled():
                    self._tracer = Tracer(service=self._service)
                self._decided = True
            return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """Decorator: trace ``handler`` like Powertools does, deciding on its first invocation."""
        wrapped: list[Callable[..., Any]] = []
        lock = threading.Lock()

        @functools.wraps(handler)
        def traced(event: Any, context: Any) -> Any:
            if not wrapped:
                with lock:
                    if not wrapped:
                        tracer = self.get()
                        wrapped.append(handler if tracer is None else tracer.capture_lambda_handler(handler))
            return wrapped[0](event, context)

        return cast("Handler", traced)


tracer = LazyTracer(SERVICE)


def settings() -> StackSettings:
    """The stack's parameters, read (and validated) from this function's environment."""
    return load_settings(os.environ)


@functools.cache
def aws_clients() -> AwsClients:
    """The container's clients, built lazily in the function's region and kept while it is warm."""
    return AwsClients(region_name=os.environ.get("AWS_REGION"))


def run_step(
    step: str, event: object, model: type[InputModel], action: Callable[[InputModel], BaseModel]
) -> dict[str, object]:
    """Validate ``event`` as ``model``, run ``action``, log the outcome, return its JSON.

    Outputs hold no secrets (only ARNs), so they are logged whole: the logs show what each step
    decided, searchable by ``step``.
    """
    given = parse_model(model, event)
    try:
        output = action(given).model_dump(mode="json", by_alias=True)
    except MigrationError as error:
        logger.warning(
            "step failed", extra={"step": step, "error": type(error).__name__, "reason": str(error)}
        )
        raise
    logger.info("step finished", extra={"step": step, "output": output})
    return output
