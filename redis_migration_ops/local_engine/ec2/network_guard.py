"""Connections reach loopback only; sandbox addresses are redirected to their forwarders."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis_migration_ops.local_engine.ec2.client_addresses import current_client_address
from redis_migration_ops.local_engine.moto_patch import MotoPatch

if TYPE_CHECKING:
    from redis_migration_ops.local_engine.ec2.private_network import PrivateNetwork


class AddressMap:
    """Sandbox addresses and the loopback forwarders that stand in for them."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, int], tuple[str, int]] = {}
        # Loopback ports whose connections are made inside a private network (ec2/private_network.py).
        self._private: dict[int, tuple[PrivateNetwork, int]] = {}
        self._lock = threading.Lock()
        # Where the current code's connections leave from (ec2/client_addresses.py); the engine
        # adds the client functions' Hyperplane interfaces.
        self.client_address: Callable[[], str | None] = current_client_address

    def add(self, host: str, port: int, target: tuple[str, int]) -> None:
        """Send connections for ``host:port`` to ``target`` (which must be loopback)."""
        if not _is_loopback(target[0]):
            raise ValueError(f"a mapped address must lead to loopback, not {target[0]}")
        with self._lock:
            self._routes[(_dns_name(host), int(port))] = (target[0], int(target[1]))

    def lookup(self, host: str, port: int) -> tuple[str, int] | None:
        """The loopback target of ``host:port``, if mapped (a name in any case, with or without the
        trailing dot of a fully qualified name, as DNS resolves it: RFC 4343, RFC 1034 section 3.1)."""
        with self._lock:
            return self._routes.get((_dns_name(host), port))

    def add_private(self, port: int, network: PrivateNetwork, inner_port: int) -> None:
        """Make connections to 127.0.0.1:``port`` (the network's forwarder for ``inner_port``) inside
        ``network`` instead, from the current client's address (127.0.0.1 without one)."""
        with self._lock:
            self._private[int(port)] = (network, int(inner_port))

    def private(self, host: str, port: int) -> tuple[PrivateNetwork, int] | None:
        """The private network and inner port behind a loopback ``host:port``, if any."""
        if not _is_loopback(host):
            return None
        with self._lock:
            return self._private.get(int(port))

    def items(self) -> Iterator[tuple[tuple[str, int], tuple[str, int]]]:
        """A snapshot of the routes."""
        with self._lock:
            return iter(list(self._routes.items()))


def _dns_name(host: str) -> str:
    """A host name as DNS compares it: case-insensitive, the trailing root dot optional."""
    return host.rstrip(".").lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _port_number(port: Any) -> int | None:
    try:
        return int(port)
    except (TypeError, ValueError):
        return None


def _refused(host: Any, port: Any) -> ConnectionRefusedError:
    return ConnectionRefusedError(
        f"NetworkGuard (local engine): connection to {host}:{port} refused; only loopback and addresses "
        "registered with LocalEngine.map_address are reachable"
    )


class NetworkGuard(MotoPatch):
    """Gap: nothing stops a rehearsal from connecting to the private or public address moto reports.

    Fill: while installed, name resolution (``socket.getaddrinfo``, which ``create_connection`` and
    redis-py use) and ``socket.socket.connect``/``connect_ex`` only reach loopback; an address
    mapped with :meth:`AddressMap.add` is redirected to its loopback forwarder; anything else raises
    ``ConnectionRefusedError`` naming the guard before a packet is sent. A forwarder of a private
    network (:meth:`AddressMap.add_private`) is not used from here: the connection is made inside
    that network, from the current client's address (``ec2/client_addresses.py``), so the server sees
    the client as AWS would show it.
    """

    def __init__(self, routes: AddressMap) -> None:
        super().__init__()
        self._routes = routes

    def install(self) -> None:
        routes = self._routes
        original_getaddrinfo = socket.getaddrinfo
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex

        def getaddrinfo(  # noqa: PLR0917 (the stdlib's signature)
            host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
        ) -> Any:
            if host is None or host == "":
                return original_getaddrinfo(host, port, family, type, proto, flags)
            name = host.decode() if isinstance(host, bytes) else str(host)
            number = _port_number(port)
            target = routes.lookup(name, number) if number is not None else None
            if target is not None:
                return original_getaddrinfo(target[0], target[1], socket.AF_INET, type, proto, flags)
            if _is_loopback(name):
                return original_getaddrinfo(host, port, family, type, proto, flags)
            raise _refused(name, port)

        def checked_address(sock: socket.socket, address: Any) -> Any:
            if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
                return address
            host, port = str(address[0]), address[1]
            target = routes.lookup(host, int(port))
            if target is not None:
                if sock.family == socket.AF_INET6:
                    raise _refused(host, f"{port} (mapped to {target[0]}, which an IPv6 socket cannot reach)")
                return target
            if _is_loopback(host):
                return address
            raise _refused(host, port)

        def inside(sock: socket.socket, target: Any) -> tuple[PrivateNetwork, int] | None:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                return None
            if not isinstance(target, tuple):
                return None
            return routes.private(str(target[0]), int(target[1]))

        def connect(sock: socket.socket, address: Any) -> None:
            target = checked_address(sock, address)
            private = inside(sock, target)
            if private is None:
                original_connect(sock, target)
                return
            network, inner_port = private
            network.connect_in_place(sock, inner_port, routes.client_address())

        def connect_ex(sock: socket.socket, address: Any) -> int:
            target = checked_address(sock, address)
            if inside(sock, target) is None:
                return int(original_connect_ex(sock, target))
            try:
                connect(sock, address)
            except OSError as error:
                return int(error.errno or errno.ECONNREFUSED)
            return 0

        self._replace(socket, "getaddrinfo", getaddrinfo)
        self._replace(socket.socket, "connect", connect)
        self._replace(socket.socket, "connect_ex", connect_ex)
