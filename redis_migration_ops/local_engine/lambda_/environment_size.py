"""A function's environment variables total at most 4 KB, as Lambda counts them.

AWS ("Lambda quotas", https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
"Function environment variables: 4 KB", a quota that cannot be raised. Lambda measures the
variables as one JSON object (``{"KEY":"value",...}``, no spaces) in UTF-8 bytes and refuses more
than 4,096 of them with ``InvalidParameterValueException``: "Lambda was unable to configure your
environment variables because the environment variables you have provided exceeded the 4KB limit.
String measured: {...}". Exactly 4,096 bytes is accepted. (Recorded against AWS in LocalStack's
snapshot tests ``test_large_environment_variables_fails``, ``test_large_environment_fails_multiple_keys``
and ``test_lambda_envvars_near_limit_succeeds``, tests/aws/services/lambda_/test_lambda_api.py; the
same message is quoted from UpdateFunctionConfiguration in
https://github.com/github-aws-runners/terraform-aws-github-runner/issues/3594.)

Gap: moto accepts an environment of any size on CreateFunction and UpdateFunctionConfiguration.

Fill: both refuse, with Lambda's error and message, an environment over the limit; nothing is
created or changed. Characters outside ASCII count as their UTF-8 bytes here; AWS does not document
how it counts them (the recorded tests use ASCII only).
"""

from __future__ import annotations

import json
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import InvalidParameterValueException

from redis_migration_ops.local_engine.moto_patch import MotoPatch

ENVIRONMENT_LIMIT_BYTES = 4096


def measured(variables: dict[str, str]) -> str:
    """The string Lambda measures: the variables as compact JSON."""
    return json.dumps(variables, separators=(",", ":"), ensure_ascii=False)


def refuse_oversized(body: dict[str, Any]) -> None:
    """Raise Lambda's error when the request's ``Environment.Variables`` exceed 4 KB."""
    variables = (body.get("Environment") or {}).get("Variables")
    if not variables:
        return
    text = measured(dict(variables))
    if len(text.encode("utf-8")) > ENVIRONMENT_LIMIT_BYTES:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment "
            f"variables you have provided exceeded the 4KB limit. String measured: {text}"
        )


class LambdaEnvironmentSize(MotoPatch):
    """Gap and fill: see the module doc."""

    def install(self) -> None:
        backend_cls = lambda_models.LambdaBackend
        original_create = backend_cls.create_function
        original_update = backend_cls.update_function_configuration

        def create_function(backend: Any, spec: dict[str, Any]) -> Any:
            refuse_oversized(spec)
            return original_create(backend, spec)

        def update_function_configuration(
            backend: Any, function_name: str, qualifier: str, body: dict[str, Any]
        ) -> Any:
            refuse_oversized(body)
            return original_update(backend, function_name, qualifier, body)

        self._replace(backend_cls, "create_function", create_function)
        self._replace(backend_cls, "update_function_configuration", update_function_configuration)
