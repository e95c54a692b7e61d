"""A private network for the rehearsal's ElastiCache nodes, where each client has its own address.

Why: on AWS, a node's ``CLIENT LIST`` shows each connection's source address: a Lambda function's
Hyperplane interface, an instance's, an ECS task's ("Client list", https://redis.io/docs/latest/commands/client-list/:
``addr``, the client's address and port). A rehearsal runs every client in one process, on
127.0.0.1, and the machine's own loopback must not be given VPC addresses (the machine is shared,
and addresses there would be reachable by everything on it). So the nodes run in a network
namespace of their own whose ``lo`` carries 127.0.0.1 and, added as clients appear, each client's
address. A socket created in that namespace, bound to the client's address and connected to a
node's 127.0.0.1 port, is what the node sees as that client. Every connection still goes to
127.0.0.1, inside a namespace that has nothing but ``lo``.

How: one thread, *the network's thread*, calls ``unshare(CLONE_NEWNET)`` (``ctypes``; Python 3.11
has no ``os.unshare``), which moves only that thread into a new network namespace. Everything done
in the namespace is done by that thread: starting the nodes' servers (a child is born in the
namespace of the thread that forks it, and with ``setpriv --pdeathsig KILL`` it dies with that
thread, so with the network, however this process ends), adding addresses to ``lo``
(``ip addr add``), and creating sockets (a socket belongs to the namespace it was created in,
whichever thread uses it afterwards). :meth:`PrivateNetwork.forward` opens a port on the
machine's 127.0.0.1 that relays tools connecting from outside (``redis-cli``, an admin client)
into the namespace, from its 127.0.0.1. The network ends with :meth:`PrivateNetwork.close`.

Needs root (a new network namespace), ``ip`` and ``setpriv`` (util-linux); the rehearsal's sandbox
host needs them too.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from redis_migration_ops.local_engine.ec2.loopback_relay import LoopbackRelay

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT_S = 5.0
# The kernel kills the child when the thread that forked it exits (prctl PR_SET_PDEATHSIG).
_DIE_WITH_NETWORK = ["setpriv", "--pdeathsig", "KILL", "--"]
# Socket options a client may set before connecting (redis-py sets the first two); a socket made
# in the namespace takes them over from the caller's.
_COPIED_OPTIONS = (
    (socket.IPPROTO_TCP, socket.TCP_NODELAY),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
)

T = TypeVar("T")


class PrivateNetworkError(RuntimeError):
    """The private network could not be made or used."""


def missing_requirements() -> list[str]:
    """What this machine lacks for a private network (empty when it can have one)."""
    missing = [] if os.geteuid() == 0 else ["root (a network namespace)"]
    missing += [tool for tool in ("ip", "setpriv") if shutil.which(tool) is None]
    return missing


def _enter_new_namespace() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare(CLONE_NEWNET): {os.strerror(errno)}")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10)


class PrivateNetwork:
    """A network namespace with only ``lo``, its servers, and the client addresses it carries."""

    def __init__(self, name: str = "elasticache") -> None:
        missing = missing_requirements()
        if missing:
            raise PrivateNetworkError(f"a private network needs: {', '.join(missing)}")
        self.name = name
        self._addresses: set[str] = {"127.0.0.1"}
        self._forwarders: list[LoopbackRelay] = []
        self._closed = False
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"network-{name}", initializer=_enter_new_namespace
        )
        try:
            self._run(lambda: None)
        except BaseException:
            self._thread.shutdown(wait=True)
            raise

    def _run(self, task: Callable[[], T], timeout: float = 30.0) -> T:
        if self._closed:
            raise PrivateNetworkError(f"the private network {self.name} is closed")
        return self._thread.submit(task).result(timeout=timeout)

    # -- inside ------------------------------------------------------------------------------

    def spawn(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the network; it dies with the network (parent-death signal)."""
        return self._run(lambda: subprocess.Popen([*_DIE_WITH_NETWORK, *argv], **popen))

    def add_address(self, address: str) -> None:
        """Give ``lo`` the (IPv4) ``address``, so a socket can be bound to it; idempotent."""
        ip = str(ipaddress.IPv4Address(address))
        if ip in self._addresses:
            return

        def add() -> None:
            # On the network's one thread, so two clients adding the same address take turns.
            if ip in self._addresses:
                return
            done = subprocess.run(
                ["ip", "addr", "add", f"{ip}/32", "dev", "lo"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            )
            # iproute2 says "File exists" or "Address already assigned", by version.
            if done.returncode != 0 and not any(
                known in done.stderr for known in ("File exists", "already assigned")
            ):
                raise PrivateNetworkError(f"ip addr add {ip}: {done.stderr.strip()}")
            self._addresses.add(ip)

        self._run(add)

    @property
    def addresses(self) -> list[str]:
        """The addresses ``lo`` carries (127.0.0.1 and every client address added)."""
        return sorted(self._addresses)

    def dial(
        self, port: int, source: str | None = None, timeout: float | None = CONNECT_TIMEOUT_S
    ) -> socket.socket:
        """A TCP socket connected to 127.0.0.1:``port`` inside the network, from ``source`` (an
        address of ``lo``, added if new) or from 127.0.0.1. ``timeout`` bounds the connect and is
        the socket's timeout afterwards."""
        if source is not None:
            self.add_address(source)

        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if source is not None:
                    sock.bind((source, 0))
                sock.settimeout(CONNECT_TIMEOUT_S if timeout is None else timeout)
                sock.connect(("127.0.0.1", port))
                sock.settimeout(timeout)
            except BaseException:
                sock.close()
                raise
            return sock

        return self._run(connect, timeout=(timeout or CONNECT_TIMEOUT_S) + 5)

    def connect_in_place(self, sock: socket.socket, port: int, source: str | None) -> None:
        """Make ``sock`` (an unconnected IPv4 TCP socket made outside) a connection to 127.0.0.1:``port``
        inside the network, from ``source``: a socket made inside takes its file descriptor
        (``dup2``), with the caller's options and timeout, so the caller's object is the connection."""
        timeout = sock.gettimeout()
        inner = self.dial(port, source, timeout)
        try:
            for level, option in _COPIED_OPTIONS:
                with contextlib.suppress(OSError):
                    inner.setsockopt(level, option, sock.getsockopt(level, option))
            os.dup2(inner.fileno(), sock.fileno())
        finally:
            inner.close()
        sock.settimeout(timeout)  # the new file description gets the caller's blocking mode

    # -- from outside ------------------------------------------------------------------------

    def forward(self, port: int) -> tuple[str, int]:
        """A port on the machine's 127.0.0.1 relaying to 127.0.0.1:``port`` inside (from 127.0.0.1)."""
        relay = LoopbackRelay(lambda: self.dial(port), name="network-forwarder")
        self._forwarders.append(relay)
        return relay.address

    def close(self) -> None:
        """Stop the forwarders and the network's thread (its children get SIGKILL). Idempotent;
        stop the servers first to let them finish cleanly."""
        if self._closed:
            return
        for forwarder in self._forwarders:
            forwarder.stop()
        self._forwarders.clear()
        self._closed = True
        self._thread.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PrivateNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
