"""ElastiCache's own connections to each node: its monitoring, which ``CurrConnections`` counts.

What AWS says ("Metrics for Valkey and Redis OSS", CurrConnections,
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html): "The number of client
connections, excluding connections from read replicas. ElastiCache uses two to four of the
connections to monitor the cluster in each case. This is derived from the connected_clients
statistic at INFO." (Older versions of the page said "two to three"; a 2024 version quoted by AWS
support says "4 to 6".) With the default ``timeout`` 0 a node never closes an idle client
("Redis OSS-specific parameters", ``timeout``,
https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ParameterGroups.Engine.html).

What AWS does not say: how those connections look in ``CLIENT LIST`` (address, name, commands).
None of AWS's pages we found describes them. What is certain is where they cannot come from: a
client in the VPC connects from its network interface's private address, never from the node's
own loopback. So the product leaves out, as ElastiCache's own, connections from a loopback
address and from ElastiCache's own interfaces (``redis_migration.clients.connected``), and
counts everything else as a client: a monitoring connection from elsewhere would be named, with
its commands, rather than a client hidden.

Here: :class:`NodeMonitor` keeps :data:`MONITORING_CONNECTIONS` connections to a node from the
node's own 127.0.0.1, unnamed, authenticated like any client, each sending ``PING`` or ``INFO``
every :data:`MONITORING_INTERVAL_S` seconds (so they are never idle for long), and reads
``connected_clients`` through one of them for the node's ``CurrConnections``
(``elasticache/metrics.py``): every monitoring connection is counted, as AWS counts them.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

MONITORING_CONNECTIONS = 4
MONITORING_INTERVAL_S = 5.0
REPLY_TIMEOUT_S = 5.0


class RespError(RuntimeError):
    """The server answered a command with an error."""


class RespConnection:
    """A minimal RESP2 client on a socket it is given (TLS wrapped when asked): enough for AUTH,
    PING, INFO and a GET, without redis-py's pool (the socket comes from the private network)."""

    def __init__(self, raw: socket.socket, tls: ssl.SSLContext | None, token: str | None) -> None:
        raw.settimeout(REPLY_TIMEOUT_S)
        self._sock: socket.socket = tls.wrap_socket(raw) if tls is not None else raw
        self._buffer = b""
        self._lock = threading.Lock()
        if token is not None:
            self.command("AUTH", token)

    def command(self, *args: str | bytes) -> bytes | int | None:
        """Send one command and answer its reply (a bulk or simple string, an integer, or None)."""
        parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
        request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        with self._lock:
            self._sock.sendall(request)
            return self._reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _reply(self) -> bytes | int | None:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self._buffer) < size + 2:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                self._buffer += chunk
            value, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
            return value
        raise RespError(f"unexpected reply {line[:40]!r}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class NodeMonitor:
    """ElastiCache's monitoring connections to one node (see the module doc)."""

    def __init__(
        self,
        open_socket: Callable[[], socket.socket],
        tls: ssl.SSLContext | None,
        token: str | None,
        *,
        connections: int = MONITORING_CONNECTIONS,
        interval_s: float = MONITORING_INTERVAL_S,
    ) -> None:
        self._open_socket = open_socket
        self._tls = tls
        self._token = token
        self._count = connections
        self._interval_s = interval_s
        self._connections: list[RespConnection] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the connections (each says PING once) and start their periodic commands."""
        for _ in range(self._count):
            connection = RespConnection(self._open_socket(), self._tls, self._token)
            self._connections.append(connection)
            connection.command("PING")
        self._thread = threading.Thread(target=self._loop, name="elasticache-monitoring", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # Bounded by stop(): each turn waits at most interval_s.
        turn = 0
        while not self._stopping.wait(self._interval_s):
            for index, connection in enumerate(self._connections):
                with contextlib.suppress(OSError, ConnectionError, RespError):
                    connection.command("INFO" if (turn + index) % 2 else "PING")
            turn += 1

    def connected_clients(self) -> int | None:
        """``connected_clients`` of the node's INFO (every monitoring connection included), read
        through a monitoring connection; None when the node does not answer."""
        if not self._connections:
            return None
        try:
            raw = self._connections[0].command("INFO", "clients")
        except (OSError, ConnectionError, RespError):
            return None
        for line in (raw if isinstance(raw, bytes) else b"").decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name == "connected_clients":
                return int(value)
        return None

    def stop(self) -> None:
        """Stop the periodic commands and close the connections. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval_s + REPLY_TIMEOUT_S)
            self._thread = None
        for connection in self._connections:
            connection.close()
        self._connections.clear()
