"""Provisioned concurrency on a function's versions and aliases, and what it forbids.

AWS ("Configuring provisioned concurrency for a function",
https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html; API reference of
PutProvisionedConcurrencyConfig, ListProvisionedConcurrencyConfigs,
https://docs.aws.amazon.com/lambda/latest/api/API_PutProvisionedConcurrencyConfig.html):

- provisioned concurrency is configured on a published version or an alias, never on ``$LATEST``
  ("Provisioned Concurrency Configs cannot be applied to unpublished function versions.");
- it "counts towards a function's reserved concurrency ... You can't allocate more provisioned
  concurrency than reserved concurrency for a function". So ``PutFunctionConcurrency`` below the
  function's total provisioned concurrency is refused with ``InvalidParameterValueException``
  " ReservedConcurrentExecutions  <n> should not be lower than function's total provisioned
  concurrency [<total>]." (AWS's wording, spaces included, as recorded against AWS in LocalStack's
  snapshot test ``test_reserved_provisioned_overlap``, tests/aws/services/lambda_/test_lambda.py),
  and a provisioned concurrency above the reservation with "Requested Provisioned Concurrency
  should not be greater than the reservedConcurrentExecution for function". A function with
  provisioned concurrency therefore cannot be set to reserved concurrency 0 (frozen).

Gap: moto 5.2.5 has no provisioned concurrency at all (no route, no API) and sets any reserved
concurrency.

Fill: Put/Get/List/DeleteProvisionedConcurrencyConfig on the functions moto knows (a config is
``READY`` at once; on AWS it is ``IN_PROGRESS`` for a minute or two), and both refusals above.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses
from moto.awslambda import urls as lambda_urls
from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError

from redis_migration_ops.local_engine.lambda_.versions import split_qualifier
from redis_migration_ops.local_engine.moto_patch import MotoPatch

ROUTE = r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)/provisioned-concurrency/?$"
LATEST = "$LATEST"


def reserved_below_provisioned(reserved: int, total: int) -> str:
    """AWS's message for a reserved concurrency below the function's provisioned concurrency."""
    return (
        f" ReservedConcurrentExecutions  {reserved} should not be lower than function's total "
        f"provisioned concurrency [{total}]."
    )


class ProvisionedConcurrencyConfigNotFound(LambdaClientError):
    def __init__(self) -> None:
        super().__init__(
            "ProvisionedConcurrencyConfigNotFoundException",
            "No Provisioned Concurrency Config found for this function",
        )


class LambdaProvisionedConcurrency(MotoPatch):
    """Gap and fill: see the module doc. :meth:`total` answers a function's provisioned concurrency."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        # (account, region, function) -> qualifier -> the config as GetProvisionedConcurrencyConfig has it
        self._configs: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}

    def total(self, account_id: str, region: str, function_name: str) -> int:
        """The function's provisioned concurrency over all its versions and aliases."""
        with self._lock:
            configs = self._configs.get((account_id, region, function_name), {})
            return sum(int(c["RequestedProvisionedConcurrentExecutions"]) for c in configs.values())

    def install(self) -> None:
        patch = self
        backend_cls = lambda_models.LambdaBackend
        response_cls = lambda_responses.LambdaResponse
        original_put_concurrency = backend_cls.put_function_concurrency

        def put_function_concurrency(backend: Any, function_name: str, reserved_concurrency: str) -> Any:
            name, _ = split_qualifier(function_name)
            function = backend.get_function(name)
            total = patch.total(backend.account_id, backend.region_name, function.function_name)
            if reserved_concurrency is not None and int(reserved_concurrency) < total:
                raise InvalidParameterValueException(
                    reserved_below_provisioned(int(reserved_concurrency), total)
                )
            return original_put_concurrency(backend, function_name, reserved_concurrency)

        def target(response: Any) -> tuple[Any, str, str | None]:
            name, qualifier = split_qualifier(unquote(response.path.split("/")[-2]))
            qualifier = qualifier or response.querystring.get("Qualifier", [None])[0]
            function = response.backend.get_function(name)
            return function, function.function_name, qualifier

        def key(response: Any, name: str) -> tuple[str, str, str]:
            return (response.backend.account_id, response.backend.region_name, name)

        def put_provisioned_concurrency_config(response: Any) -> Any:
            function, name, qualifier = target(response)
            if not qualifier or qualifier == LATEST:
                raise InvalidParameterValueException(
                    "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
                )
            response.backend.get_function(name, qualifier)  # an unknown version or alias: not found
            requested = int(json.loads(response.body or "{}")["ProvisionedConcurrentExecutions"])
            reserved = function.reserved_concurrency
            with patch._lock:
                configs = patch._configs.setdefault(key(response, name), {})
                others = sum(
                    int(c["RequestedProvisionedConcurrentExecutions"])
                    for q, c in configs.items()
                    if q != qualifier
                )
                if reserved is not None and others + requested > int(reserved):
                    raise InvalidParameterValueException(
                        "Requested Provisioned Concurrency should not be greater than the "
                        "reservedConcurrentExecution for function"
                    )
                configs[qualifier] = {
                    "RequestedProvisionedConcurrentExecutions": requested,
                    "AvailableProvisionedConcurrentExecutions": requested,
                    "AllocatedProvisionedConcurrentExecutions": requested,
                    "Status": "READY",
                    "LastModified": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                }
                answer = dict(configs[qualifier])
            return 202, {"status": 202}, json.dumps(answer)

        def get_provisioned_concurrency_config(response: Any) -> Any:
            _, name, qualifier = target(response)
            with patch._lock:
                found = patch._configs.get(key(response, name), {}).get(str(qualifier))
            if found is None:
                raise ProvisionedConcurrencyConfigNotFound()
            return 200, {}, json.dumps(found)

        def list_provisioned_concurrency_configs(response: Any) -> Any:
            function, name, _ = target(response)
            with patch._lock:
                configs = dict(patch._configs.get(key(response, name), {}))
            unqualified = function.function_arn.split(":function:")[0] + f":function:{name}"
            rows = [{"FunctionArn": f"{unqualified}:{q}", **c} for q, c in sorted(configs.items())]
            return 200, {}, json.dumps({"ProvisionedConcurrencyConfigs": rows})

        def delete_provisioned_concurrency_config(response: Any) -> Any:
            _, name, qualifier = target(response)
            with patch._lock:
                patch._configs.get(key(response, name), {}).pop(str(qualifier), None)
            return 204, {"status": 204}, ""

        self._replace(backend_cls, "put_function_concurrency", put_function_concurrency)
        self._add(response_cls, "put_provisioned_concurrency_config", put_provisioned_concurrency_config)
        self._add(response_cls, "get_provisioned_concurrency_config", get_provisioned_concurrency_config)
        self._add(response_cls, "list_provisioned_concurrency_configs", list_provisioned_concurrency_configs)
        self._add(
            response_cls, "delete_provisioned_concurrency_config", delete_provisioned_concurrency_config
        )
        lambda_urls.url_paths[ROUTE] = lambda_responses.LambdaResponse.dispatch

    def uninstall(self) -> None:
        lambda_urls.url_paths.pop(ROUTE, None)
        super().uninstall()
        with self._lock:
            self._configs.clear()
