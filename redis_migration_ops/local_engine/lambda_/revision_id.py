"""Lambda functions carry a ``RevisionId`` and updates honour it.

https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html (``RevisionId``:
"Update the function only if the revision ID matches the ID that's specified.")
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import PreconditionFailedException

from redis_migration_ops.local_engine.moto_patch import MotoPatch

# Where the revision lives on moto's function objects (published versions get their own).
REVISION_ATTRIBUTE = "_local_engine_revision_id"
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


class LambdaRevisionId(MotoPatch):
    """Gap: moto's functions have no ``RevisionId`` and ``UpdateFunctionConfiguration`` ignores it.

    Fill: each function reports a ``RevisionId`` that changes on every configuration or code
    update; an update with a ``RevisionId`` that is not the current one is refused with
    ``PreconditionFailedException`` (HTTP 412) like Lambda. (``LastUpdateStatus: Successful`` is
    already reported by ``GetFunction``/``GetFunctionConfiguration``, so the
    ``function_updated_v2`` waiter works.)
    """

    def install(self) -> None:
        lock = threading.RLock()  # get_configuration runs inside the update, under the lock
        attribute = REVISION_ATTRIBUTE
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
                    raise PreconditionFailedException(REVISION_MISMATCH)
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
                    raise PreconditionFailedException(REVISION_MISMATCH)
                result = original_update_code(backend, function_name, qualifier, body)
                setattr(function, attribute, str(uuid.uuid4()))
            return result

        self._replace(function_cls, "get_configuration", get_configuration)
        self._replace(backend_cls, "update_function_configuration", update_function_configuration)
        self._replace(backend_cls, "update_function_code", update_function_code)
