"""A connection in the VPC carries the address of its client's network interface.

On AWS a connection's source address is the private IP of the network interface it leaves from: a
Lambda function's Hyperplane interface (shared by the functions with the same subnet and security
groups), an instance's primary interface, an ``awsvpc`` ECS task's own interface ("Elastic network
interfaces", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-eni.html). Redis shows it as
``addr`` in ``CLIENT LIST``, and that is all a server knows of who is connected.

In a rehearsal every client runs in this process. Code that stands for a client runs inside
:func:`acting_as_address` (an instance's, a task's, or an address no interface has) or inside
``acting_as_function`` (``lambda_/client_identity.py``: the engine gives it the function's
Hyperplane interface address, ``lambda_/hyperplane_interfaces.py``). The engine's
:class:`~redis_migration_ops.local_engine.ec2.network_guard.NetworkGuard` then connects to the
rehearsal's ElastiCache nodes from that address, inside their private network
(``ec2/private_network.py``); without an identity a connection comes from 127.0.0.1 there.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

CURRENT_CLIENT_ADDRESS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "local_engine_client_address", default=None
)


@contextmanager
def acting_as_address(address: str) -> Iterator[None]:
    """Run the block as a client whose connections leave from ``address`` (an IPv4 address: an
    instance's or a task's interface, or one no interface of the account has)."""
    token = CURRENT_CLIENT_ADDRESS.set(str(ipaddress.IPv4Address(address)))
    try:
        yield
    finally:
        CURRENT_CLIENT_ADDRESS.reset(token)


def current_client_address() -> str | None:
    """The address the current code's connections leave from, when it acts as an address."""
    return CURRENT_CLIENT_ADDRESS.get()
