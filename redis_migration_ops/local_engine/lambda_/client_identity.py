"""Which Lambda function the current code acts as, when it stands in for a client's own code.

On AWS a client function's connections to Redis come from its Hyperplane network interface, so
ElastiCache's ``CLIENT LIST`` shows that interface's address, and the function can only run while
Lambda lets it (reserved concurrency 0 throttles it). In a rehearsal nobody invokes the client
functions; the rehearsal's simulated clients run their traffic inside :func:`acting_as_function`,
so the engine's network modelling can give their connections the function's address.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

CURRENT_CLIENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "local_engine_client_function", default=None
)


@contextmanager
def acting_as_function(function_name: str) -> Iterator[None]:
    """Run the block as the client function ``function_name`` (its connections are its own)."""
    token = CURRENT_CLIENT_FUNCTION.set(function_name)
    try:
        yield
    finally:
        CURRENT_CLIENT_FUNCTION.reset(token)


def current_client_function() -> str | None:
    """The client function the current code acts as, if any."""
    return CURRENT_CLIENT_FUNCTION.get()
