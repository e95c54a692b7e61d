"""A function's environment as Lambda returns it, read so that a write can never lose a variable,
and the size Lambda allows it.

Lambda refuses an environment over 4 KB ("Function environment variables: 4 KB", a quota that
cannot be raised: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html),
measured as the variables' compact JSON (``{"KEY":"value",...}``) in bytes: 4,096 is accepted,
4,097 refused with "Lambda was unable to configure your environment variables because the
environment variables you have provided exceeded the 4KB limit. String measured: ..."
(InvalidParameterValueException). A cutover that adds the managed keys to a function near the
limit would fail half-way through a batch; the preflight refuses it first, by name and size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from redis_migration.errors import FunctionEnvironmentUnreadable

ENVIRONMENT_LIMIT_BYTES = 4096
# The random suffix Secrets Manager adds to a secret's name in its ARN ("-" and 6 characters).
SECRET_ARN_SUFFIX = "-XXXXXX"  # noqa: S105 - a placeholder of the suffix's length


def function_variables(config: Any) -> dict[str, str]:
    """The function's variables; refuse to go on when Lambda could not decrypt them for us.

    A function whose variables are encrypted with a KMS key we may not use comes back with
    ``Environment.Error`` and no ``Variables``: read as "none", a write would replace every
    variable with the managed keys alone.
    """
    environment = config.get("Environment", {})
    if environment.get("Error"):
        error = environment["Error"]
        raise FunctionEnvironmentUnreadable(
            f"{config.get('FunctionName')}: its environment could not be read "
            f"({error.get('ErrorCode')}: {error.get('Message')}); not writing an environment"
            " that was not read"
        )
    return dict(environment.get("Variables", {}))


def environment_size(variables: Mapping[str, str]) -> int:
    """The variables' size as Lambda counts it: their compact JSON, in UTF-8 bytes."""
    return len(json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def merge_variables(variables: Mapping[str, str], values: Mapping[str, str | None]) -> dict[str, str]:
    """``variables`` with ``values`` written over them (None removes a key): what a cutover writes."""
    merged = dict(variables)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def predicted_secret_arn(secret_name: str, function_arn: str) -> str:
    """The ARN a secret of that name will have in the function's account and region (its random
    suffix stood for by as many characters): the size it adds to an environment, before it exists."""
    parts = function_arn.split(":")
    if len(parts) < 5:  # no ARN given: the longest usual partition and region, a 12-digit account
        parts = ["arn", "aws-us-gov", "lambda", "ap-southeast-4", "123456789012"]
    partition, region, account = parts[1], parts[3], parts[4]
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secret_name}{SECRET_ARN_SUFFIX}"


def oversized_environment_problem(config: Mapping[str, Any], values: Mapping[str, str | None]) -> str | None:
    """The refusal of a function whose environment would pass Lambda's 4 KB once ``values`` are written
    (None: it fits, or its variables could not be read, which is refused on its own)."""
    environment = config.get("Environment") or {}
    if environment.get("Error"):
        return None
    variables: dict[str, str] = dict(environment.get("Variables") or {})
    after = environment_size(merge_variables(variables, values))
    if after <= ENVIRONMENT_LIMIT_BYTES:
        return None
    return (
        f"function {config.get('FunctionName')}: its environment would be {after} bytes after the switch "
        f"(now {environment_size(variables)}), over Lambda's limit of {ENVIRONMENT_LIMIT_BYTES} bytes "
        "(the variables as JSON); Lambda would refuse the update: make room (shorter or fewer variables, "
        "or settings read from SSM Parameter Store or Secrets Manager), then re-run"
    )
