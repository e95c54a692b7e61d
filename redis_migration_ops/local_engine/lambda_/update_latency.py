"""A Lambda configuration or code update takes time, and the function is locked meanwhile.

What AWS does (Lambda developer guide, "Lambda function states"; API reference of
UpdateFunctionConfiguration):
https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html
https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html

"When you update a function, Lambda provisions an instance of the function and its supporting
resources. If your function connects to a VPC, this process can take a minute. During this time,
you can't modify the function, but you can still invoke it. The ``LastUpdateStatus`` ... fields
in the response from GetFunctionConfiguration indicate when the update is complete." Meanwhile
another ``UpdateFunctionConfiguration``, ``UpdateFunctionCode`` or ``PublishVersion`` is refused
with ``ResourceConflictException``: "The operation cannot be performed at this time. An update is
in progress for resource: <function ARN>".

moto 5.2.5 finishes every update at once (``LastUpdateStatus: Successful``), so a caller that
forgets to wait, or waits wrongly, passes. Here the update stays ``InProgress`` for a chosen
number of seconds (``LocalEngine(lambda_update_seconds=...)``; 0, the default, keeps moto's
instant updates so the suite stays fast).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import LambdaClientError

from redis_migration_ops.local_engine.moto_patch import MotoPatch

_UNTIL = "_local_engine_update_in_progress_until"


class UpdateInProgress(LambdaClientError):
    """Lambda's 409 while an update of the function is still in progress."""

    code = 409

    def __init__(self, function_arn: str) -> None:
        super().__init__(
            "ResourceConflictException",
            "The operation cannot be performed at this time. "
            f"An update is in progress for resource: {function_arn}",
        )


def update_in_progress(function: Any) -> bool:
    """Whether ``function`` (a moto function object) is still being updated."""
    return time.monotonic() < float(getattr(function, _UNTIL, 0.0))


class LambdaUpdateLatency(MotoPatch):
    """Gap: moto's updates finish at once; nothing is refused while one is in progress.

    Fill: after ``UpdateFunctionConfiguration`` or ``UpdateFunctionCode`` the function reports
    ``LastUpdateStatus: InProgress`` for ``seconds``, then ``Successful``; meanwhile another update
    or a ``PublishVersion`` gets ``ResourceConflictException`` with AWS's message.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        if seconds < 0:
            raise ValueError("lambda_update_seconds must be >= 0")
        self.seconds = float(seconds)
        # When each function's latest update took effect (wall clock): the cutover window is the
        # span of these over the switched functions.
        self.applied_at: dict[str, float] = {}

    def install(self) -> None:
        if self.seconds == 0:
            return  # moto's instant updates are the model
        seconds = self.seconds
        applied_at = self.applied_at
        lock = threading.RLock()
        function_cls = lambda_models.LambdaFunction
        backend_cls = lambda_models.LambdaBackend
        original_configuration = function_cls.get_configuration
        original_update_configuration = backend_cls.update_function_configuration
        original_update_code = backend_cls.update_function_code
        original_publish = backend_cls.publish_version

        def get_configuration(function: Any, on_create: bool = False) -> dict[str, Any]:
            configuration: dict[str, Any] = original_configuration(function, on_create=on_create)
            if update_in_progress(function):
                configuration["LastUpdateStatus"] = "InProgress"
                configuration.pop("LastUpdateStatusReason", None)
                configuration.pop("LastUpdateStatusReasonCode", None)
            return configuration

        def updating(original: Any) -> Any:
            def update(backend: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
                function = backend.get_function(function_name, qualifier)
                with lock:
                    if update_in_progress(function):
                        raise UpdateInProgress(function.function_arn)
                    result = original(backend, function_name, qualifier, body)
                    setattr(function, _UNTIL, time.monotonic() + seconds)
                    applied_at[function.function_name] = time.time() + seconds
                if isinstance(result, dict) and "LastUpdateStatus" in result:
                    result = {**result, "LastUpdateStatus": "InProgress"}
                return result

            return update

        def publish_version(backend: Any, function_name: str, description: str = "") -> Any:
            latest = backend.get_function(function_name)
            with lock:
                if update_in_progress(latest):
                    raise UpdateInProgress(latest.function_arn)
                return original_publish(backend, function_name, description)

        self._replace(function_cls, "get_configuration", get_configuration)
        self._replace(backend_cls, "update_function_configuration", updating(original_update_configuration))
        self._replace(backend_cls, "update_function_code", updating(original_update_code))
        self._replace(backend_cls, "publish_version", publish_version)
