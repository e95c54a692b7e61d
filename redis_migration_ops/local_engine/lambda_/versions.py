"""Lambda published versions and aliases, as far as moto 5.2.5 gets them wrong.

What AWS does (Lambda developer guide, "Lambda function versions" and "Lambda function aliases";
API reference of UpdateFunctionConfiguration, PublishVersion, UpdateAlias):
https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html
https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html
https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html
https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html
https://docs.aws.amazon.com/lambda/latest/api/API_UpdateAlias.html

- ``UpdateFunctionConfiguration`` (and ``UpdateFunctionCode``) change ``$LATEST`` only: "You
  can't modify the configuration of a published version, only the unpublished version."
- ``PublishVersion`` freezes ``$LATEST``'s code and configuration (environment included) as a new,
  immutable version with its own ``RevisionId``; given a ``RevisionId``, it publishes only if
  ``$LATEST`` still has it.
- An alias points to a version (``FunctionVersion``), optionally with
  ``RoutingConfig.AdditionalVersionWeights`` (one more version, a weight between 0 and 1);
  ``UpdateAlias`` with a ``RevisionId`` updates only if the alias still has it, and every update
  gives the alias a new ``RevisionId``.

Checked and already right in moto 5.2.5 (tests in ``test_local_engine_versions.py`` guard the
pin): a published version keeps the environment it was published with; ``Qualifier`` (version or
alias) on ``GetFunctionConfiguration``/``GetFunction`` answers that version's configuration; an
alias keeps its ``RoutingConfig``; ``PublishVersion`` without a change returns the last version.

Wrong in moto, filled here: an update of a qualified name changes the published version; a
version shares ``$LATEST``'s ``RevisionId``; ``PublishVersion`` and ``UpdateAlias`` ignore
``RevisionId``; an alias's ``RevisionId`` never changes; ``RoutingConfig`` is not validated.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from typing import Any
from urllib.parse import unquote

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.awslambda.exceptions import InvalidParameterValueException, PreconditionFailedException

from redis_migration_ops.local_engine.lambda_.revision_id import REVISION_ATTRIBUTE, REVISION_MISMATCH
from redis_migration_ops.local_engine.moto_patch import MotoPatch

LATEST = "$LATEST"
_ARN = re.compile(r"^arn:[^:]+:lambda:[^:]+:[0-9]{12}:function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$")


def split_qualifier(function_name: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """(function name, qualifier) of a name, ``name:qualifier``, or a (qualified) ARN."""
    match = _ARN.match(function_name)
    if match:
        return match["name"], match["qualifier"] or qualifier
    if ":" in function_name and not function_name.startswith("arn:"):
        name, _, in_name = function_name.partition(":")
        return name, in_name or qualifier
    return function_name, qualifier


def _refuse_published_version(function_name: str, qualifier: str | None) -> None:
    _, effective = split_qualifier(function_name, qualifier)
    if effective not in (None, LATEST):
        raise InvalidParameterValueException(
            "Current operation does not support versions other than $LATEST. "
            "Please set version to $LATEST or do not set a version in your request."
        )


class LambdaVersionsAndAliases(MotoPatch):
    """Gap and fill: see the module docstring."""

    def install(self) -> None:
        lock = threading.RLock()
        backend_cls = lambda_models.LambdaBackend
        response_cls = lambda_responses.LambdaResponse
        original_update_configuration = backend_cls.update_function_configuration
        original_update_code = backend_cls.update_function_code
        original_publish = backend_cls.publish_version
        original_publish_response = response_cls.publish_version
        original_update_alias = response_cls.update_alias

        def update_function_configuration(
            backend: Any, function_name: str, qualifier: str, body: dict[str, Any]
        ) -> Any:
            _refuse_published_version(function_name, qualifier)
            return original_update_configuration(backend, function_name, qualifier, body)

        def update_function_code(
            backend: Any, function_name: str, qualifier: str, body: dict[str, Any]
        ) -> Any:
            _refuse_published_version(function_name, qualifier)
            return original_update_code(backend, function_name, qualifier, body)

        def publish_version(backend: Any, function_name: str, description: str = "") -> Any:
            with lock:
                name, _ = split_qualifier(function_name)
                known = {id(version) for version in backend.list_versions_by_function(name)}
                published = original_publish(backend, function_name, description)
                if published is not None and id(published) not in known:
                    # moto copies $LATEST, its RevisionId included; a new version has its own.
                    setattr(published, REVISION_ATTRIBUTE, str(uuid.uuid4()))
                return published

        def publish_version_response(response: Any) -> Any:
            expected = (json.loads(response.body or "{}") or {}).get("RevisionId")
            if expected is not None:
                function_name = unquote(response.path.split("/")[-2])
                latest = response.backend.get_function(function_name)
                if latest.get_configuration().get("RevisionId") != expected:
                    raise PreconditionFailedException(REVISION_MISMATCH)
            return original_publish_response(response)

        def update_alias_response(response: Any) -> Any:
            function_name = unquote(response.path.rsplit("/")[-3])
            alias_name = unquote(response.path.rsplit("/", 2)[-1])
            params = json.loads(response.body or "{}") or {}
            with lock:
                alias = response.backend.get_alias(alias_name, function_name)
                expected = params.get("RevisionId")
                if expected is not None and expected != alias.revision_id:
                    raise PreconditionFailedException(REVISION_MISMATCH)
                version = params.get("FunctionVersion") or alias.function_version
                _check_routing(response.backend, function_name, version, params.get("RoutingConfig"))
                result = original_update_alias(response)
                alias.revision_id = str(uuid.uuid4())
                return (result[0], result[1], json.dumps(alias.to_json()))

        self._replace(backend_cls, "update_function_configuration", update_function_configuration)
        self._replace(backend_cls, "update_function_code", update_function_code)
        self._replace(backend_cls, "publish_version", publish_version)
        self._replace(response_cls, "publish_version", publish_version_response)
        self._replace(response_cls, "update_alias", update_alias_response)


def _check_routing(backend: Any, function_name: str, version: str, routing: Any) -> None:
    """AdditionalVersionWeights: one other published version, weight in [0, 1] (UpdateAlias)."""
    weights = (routing or {}).get("AdditionalVersionWeights") or {}
    if len(weights) > 1:
        raise InvalidParameterValueException(
            "Number of items in AdditionalVersionWeights cannot be greater than 1"
        )
    for other, weight in weights.items():
        if other == version:
            raise InvalidParameterValueException(
                f"Invalid function version {other}. Function version {other} is already included in routing "
                "configuration."
            )
        if LATEST in (other, version):
            raise InvalidParameterValueException(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        if not 0.0 <= float(weight) <= 1.0:
            raise InvalidParameterValueException(f"Invalid weight {weight}: it must be between 0.0 and 1.0")
        backend.get_function(function_name, other)  # moto's ResourceNotFoundException for a missing version
