"""A function's environment as Lambda returns it, read so that a write can never lose a variable."""

from __future__ import annotations

from typing import Any

from redis_migration.errors import FunctionEnvironmentUnreadable


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
