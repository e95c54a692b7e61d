"""Connections for the data steps: where a Redis is, its credentials, and a fast pipelined link.

A :class:`RedisEndpoint` names a Redis (host, port, TLS, the ARN of the secret that holds its
password); the password itself is read from Secrets Manager in the step and lives only in this
process's memory. A :class:`RedisLink` is one connection made by redis-py (TLS with the default
trust store and host-name check, AUTH, ``CLIENT SETNAME redis-migration``, timeouts, a bounded
retry of the connection) used two ways:

- commands whose replies redis-py parses (``command``, ``send`` then ``receive``, ``script``:
  EVALSHA with a fall-back to EVAL the first time a server does not know the script);
- raw streams (``send_raw``, ``read_simple_replies``): RESP-encoded commands written as they
  are and single-line replies (``+OK``, ``:1``, ``-ERR ...``) counted in bulk, without parsing
  each one in Python. The copy's RESTOREs go this way: the per-key cost stays in the servers.

A link is used one way or the other, never both: raw reading goes around redis-py's buffer.

Only read commands, ``EVAL``/``EVALSHA`` of read-only scripts, ``RESTORE``, ``DEL``, ``SELECT``,
``INFO``, ``CLIENT`` and (on the target only) a probe ``SET`` are ever sent: nothing ElastiCache
restricts (``CONFIG``, ``SAVE``, ``DEBUG``, ``MIGRATE``, ``SYNC`` ...).
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import NoScriptError, ResponseError

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.errors import MigrationError, TransientError
from redis_migration.models import RedisEndpoint
from redis_migration.watch.probe import NoAuthRetry

CLIENT_NAME = "redis-migration"
DEFAULT_TIMEOUT_S = 10.0
CONNECT_RETRIES = 3
_T = TypeVar("_T")


class SourceCredentialsUnreadable(MigrationError):
    """The secret that should hold a Redis password does not hold one we can read."""


class RedisAccessDenied(MigrationError):
    """The Redis refused our credentials (wrong password or user, or a user without permission)."""


class RedisUnavailable(TransientError):
    """A Redis could not be reached, or a connection broke, after the bounded retries."""


def password_in_secret(secret_string: str) -> str:
    """The password a secret's value holds: its ``password``/``token``/``authToken``/``auth_token``
    field when the value is a JSON object, its only string field, or else the value itself."""
    try:
        document = json.loads(secret_string)
    except json.JSONDecodeError:
        return secret_string
    if isinstance(document, str):
        return document
    if not isinstance(document, dict):
        raise SourceCredentialsUnreadable("the secret's value is JSON but neither an object nor a string")
    for name in ("password", "token", "authToken", "auth_token"):
        if isinstance(document.get(name), str):
            return str(document[name])
    strings = [value for value in document.values() if isinstance(value, str)]
    if len(strings) == 1:
        return str(strings[0])
    raise SourceCredentialsUnreadable(
        "the secret's JSON has no password, token or authToken field and more than one string field"
    )


@dataclass(frozen=True)
class Credentials:
    """A password in memory: never logged, never returned, never in a model."""

    username: str | None
    password: str | None = field(repr=False)


def lua_source(name: str) -> str:
    return resources.files("redis_migration.data").joinpath("lua", name).read_text()


@dataclass(frozen=True)
class Script:
    """A Lua script sent by SHA-1 (EVALSHA), by body the first time a server lacks it."""

    name: str
    body: str

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.body.encode()).hexdigest()  # noqa: S324 - Redis names scripts so

    @classmethod
    def load(cls, *parts: str) -> Script:
        """A script made of the package's ``lua/<part>`` files, in order."""
        return cls(name=parts[-1], body="\n".join(lua_source(part) for part in parts))


@dataclass
class SimpleReplies:
    """The single-line replies of a raw stream: how many were OK, integers' sum, the errors."""

    count: int
    ok: int = 0
    integer_sum: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


class RedisLink:
    """One connection to a Redis (see the module doc). Not thread-safe; close it when done."""

    def __init__(
        self, endpoint: RedisEndpoint, credentials: Credentials, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.endpoint = endpoint
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._connection: Any = None  # redis-py's connection methods are untyped
        self._db = 0
        self._known_scripts: set[str] = set()
        self._pending_scripts: list[tuple[Script, tuple[Any, ...]]] = []
        self._expiry_command: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def _build(self) -> Any:
        kwargs: dict[str, Any] = {
            "host": self.endpoint.host,
            "port": self.endpoint.port,
            "username": self._credentials.username,
            "password": self._credentials.password,
            "socket_timeout": self._timeout_s,
            "socket_connect_timeout": self._timeout_s,
            "socket_keepalive": True,
            "client_name": CLIENT_NAME,
            "protocol": 2,
            # No CLIENT SETINFO: the fewer commands on a server we do not own, the better.
            "driver_info": None,
            "retry": NoAuthRetry(ExponentialWithJitterBackoff(base=0.2, cap=2.0), retries=CONNECT_RETRIES),
            "retry_on_error": [redis.ConnectionError, redis.TimeoutError, socket.timeout],
        }
        if self.endpoint.tls:
            # The default trust store and the host name checked, as every client of the source does.
            kwargs |= {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
            return redis.SSLConnection(**kwargs)
        plain: Any = redis.Connection  # untyped constructor
        return plain(**kwargs)

    def connect(self) -> RedisLink:
        """Connect (AUTH, CLIENT SETNAME, SELECT the current database); bounded retries."""
        if self._connection is not None:
            return self
        connection = self._build()
        try:
            connection.connect()
        except redis.AuthenticationError as error:
            raise RedisAccessDenied(f"{self._where}: {error}") from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            raise RedisUnavailable(f"{self._where}: {error}") from None
        self._connection = connection
        self._known_scripts.clear()
        self._pending_scripts.clear()
        if self._db:
            self.command("SELECT", self._db)
        return self

    @property
    def _where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    def close(self) -> None:
        """Close the connection (a later use connects again)."""
        connection, self._connection = self._connection, None
        self._pending_scripts.clear()
        if connection is not None:
            connection.disconnect()

    def reconnect(self) -> None:
        """Drop the connection (after an error mid-stream) and make a new one."""
        self.close()
        self.connect()

    def __enter__(self) -> RedisLink:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _live(self) -> Any:
        if self._connection is None:
            self.connect()
        return self._connection

    # -- commands ------------------------------------------------------------------------------

    def send(self, *args: Any) -> None:
        """Send one command without waiting for its reply (read it with :meth:`receive`)."""
        self._live().send_command(*args)

    def receive(self) -> Any:
        """The reply of the oldest command sent; an error reply raises ResponseError."""
        return self._live().read_response()

    def command(self, *args: Any) -> Any:
        """Send one command and answer its reply."""
        self.send(*args)
        return self.receive()

    @property
    def expiry_command(self) -> str:
        """``pexpiretime`` when the server has it (Redis 7+: a key's absolute expiry, exact to the
        millisecond), else ``pttl`` (the remaining time, to add to the server's TIME)."""
        if self._expiry_command is None:
            info = self.command("INFO", "server")
            text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
            version = next(
                (line.split(":", 1)[1] for line in text.splitlines() if line.startswith("redis_version:")),
                "0",
            )
            major = int(version.split(".", 1)[0] or 0)
            self._expiry_command = "pexpiretime" if major >= 7 else "pttl"
        return self._expiry_command

    def select(self, db: int) -> None:
        """Use database ``db`` from now on (again after a reconnection)."""
        if db != self._db or self._connection is None:
            self._db = db
            if self._connection is None:
                self.connect()
            else:
                self.command("SELECT", db)

    def send_script(self, script: Script, *args: Any) -> None:
        """Send EVALSHA once this connection has sent the body (EVAL caches it on the server).

        One script at a time per link: a NOSCRIPT reply is answered by sending the body again,
        which must be the next reply the link reads."""
        if self._pending_scripts:
            raise RuntimeError("a script is already in flight on this link")
        if script.sha1 in self._known_scripts:
            self.send("EVALSHA", script.sha1, 0, *args)
        else:
            self.send("EVAL", script.body, 0, *args)
            self._known_scripts.add(script.sha1)
        self._pending_scripts.append((script, args))

    def receive_script(self) -> Any:
        """The reply of the oldest script sent."""
        script, args = self._pending_scripts.pop(0)
        try:
            return self.receive()
        except NoScriptError:
            # The server lost its script cache (a restart, a failover, SCRIPT FLUSH): send the body.
            self.send("EVAL", script.body, 0, *args)
            self._known_scripts.add(script.sha1)
            return self.receive()

    def script(self, script: Script, *args: Any) -> Any:
        """Run a script and answer its reply."""
        self.send_script(script, *args)
        return self.receive_script()

    # -- raw streams ---------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        # redis-py keeps the (TLS-wrapped) socket here; raw streams write and read it directly.
        sock = getattr(self._live(), "_sock", None)
        if sock is None:
            raise RedisUnavailable(f"{self._where}: the connection has no socket")
        return sock  # type: ignore[no-any-return]

    def send_raw(self, chunks: bytes | Sequence[bytes]) -> None:
        """Write RESP-encoded commands as they are."""
        sock = self._socket()
        try:
            if isinstance(chunks, bytes | bytearray | memoryview):
                sock.sendall(chunks)
            else:
                for chunk in chunks:
                    sock.sendall(chunk)
        except (OSError, ValueError) as error:
            raise redis.ConnectionError(f"{self._where}: {error}") from None

    def read_simple_replies(self, count: int) -> SimpleReplies:
        """Read exactly ``count`` single-line replies (status, integer or error)."""
        result = SimpleReplies(count=count)
        if count == 0:
            return result
        sock = self._socket()
        buffer = bytearray()
        lines = 0
        try:
            while lines < count:
                chunk = sock.recv(1 << 18)
                if not chunk:
                    raise redis.ConnectionError(f"{self._where}: the server closed the connection")
                buffer += chunk
                lines += chunk.count(b"\n")
        except TimeoutError as error:
            raise redis.TimeoutError(f"{self._where}: no reply within {self._timeout_s} s") from error
        except OSError as error:
            raise redis.ConnectionError(f"{self._where}: {error}") from None
        if lines != count:
            raise redis.ConnectionError(f"{self._where}: {lines} replies where {count} were expected")
        if len(buffer) == 5 * count and buffer.count(b"+OK\r\n") == count:
            result.ok = count
            return result
        for index, line in enumerate(bytes(buffer).split(b"\r\n")[:count]):
            if line.startswith(b"+"):
                result.ok += 1
            elif line.startswith(b":"):
                result.integer_sum += int(line[1:])
            elif line.startswith(b"-"):
                result.errors.append((index, line[1:].decode(errors="replace")))
            else:
                raise redis.ConnectionError(f"{self._where}: unexpected reply {line[:40]!r}")
        return result


def connect_with_retries(make: Callable[[], _T], *, attempts: int = 3, pause_s: float = 0.5) -> _T:
    """``make()`` retried on RedisUnavailable (bounded), e.g. a link that must come back mid-copy."""
    for attempt in range(1, attempts + 1):
        try:
            return make()
        except RedisUnavailable:
            if attempt == attempts:
                raise
            time.sleep(pause_s * attempt)
    raise AssertionError("unreachable")


def pack_command(*args: bytes | str | int) -> bytes:
    """One command in RESP (bytes, str or int arguments)."""
    parts = [b"*%d\r\n" % len(args)]
    for value in args:
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def response_error_kind(message: str) -> str:
    """The error code of a Redis error reply (``OOM``, ``ERR``, ``NOPERM`` ...)."""
    return message.split(" ", 1)[0] if message else ""


__all__ = [
    "CLIENT_NAME",
    "Credentials",
    "RedisAccessDenied",
    "RedisEndpoint",
    "RedisLink",
    "RedisUnavailable",
    "ResponseError",
    "Script",
    "SimpleReplies",
    "SourceCredentialsUnreadable",
    "connect_with_retries",
    "pack_command",
    "password_in_secret",
]


def read_credentials(endpoint: RedisEndpoint, aws: AwsClients) -> Credentials:
    """The endpoint's password from its secret (by ARN), in memory only; no secret: no password."""
    if endpoint.secret_arn is None:
        return Credentials(username=endpoint.username, password=None)
    with aws_errors_as_transient():
        value = aws.secretsmanager.get_secret_value(SecretId=endpoint.secret_arn)
    return Credentials(username=endpoint.username, password=password_in_secret(str(value["SecretString"])))
