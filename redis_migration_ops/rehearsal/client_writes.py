"""The rehearsal's writers: one client per client function, writing through the whole rehearsal.

``rehearse --client-writes RATE`` (on by default when the rehearsal seeds ElastiCache) starts one
:class:`ClientWriter` per function whose configuration names the ElastiCache (the one definition,
:mod:`redis_migration.clients.endpoints`), each in its own thread, for the whole rehearsal: across
the runs of a sequence too (the soak before a rollback later). Each write is one invocation of its
function, and acts as that function would:

- the invocation is admitted by the local engine as Lambda would: refused while the function's
  reserved concurrency is 0 (the consistent mode's freeze: a throttled invocation writes nothing
  and is counted), and running as the function (``engine.client_invocation``), so a Wait of the
  workflow lets it finish and its connections are the function's own;
- it reads the function's configuration (moto, through the engine) and connects to whatever it
  names at that moment: ``REDIS_HOST`` with ``REDIS_PORT``, else a ``redis://``/``rediss://`` URL
  (its database too), else ``host:port``, else another variable holding a bare host name. The cache
  is found by every name of the replication group (any case, a trailing dot); the self-hosted
  Redis by the instance's private IP. It reconnects when that changes;
- the password: the self-hosted Redis's from the secret ``REDIS_PASSWORD_SECRET_ARN`` names;
  ElastiCache's AUTH token from the secret its own variables name (the account's token secret),
  else the token the rehearsal's account holds. TLS when the URL says ``rediss`` or the cache
  requires it (in-transit encryption), the certificate checked against the process's trust store
  with the host name, as a client in AWS does;
- it writes unique keys (``SET ledger:<client>:<n>``, and now and then its previous key again with
  a new value) and increments counters the client functions share (``INCRBY ledger:counter:<i>``),
  in the database its configuration names. Every write a server acknowledged is a line of the
  ledger (:mod:`~redis_migration_ops.rehearsal.ledger`); a failure is counted, never recorded.

``--other-writer`` adds a client the run does not switch (an ECS task, a cron job on an instance):
it writes to ElastiCache throughout, acting as an address the run does not know
(:func:`other_writer_source`). Every writer is bounded in writes and in time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import redis
from botocore.exceptions import BotoCoreError, ClientError
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_migration.clients.endpoints import (
    CacheNames,
    RedisReference,
    endpoint_addresses,
    normalized_host,
    references_to,
)
from redis_migration.data.link import password_in_secret

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.local_engine.lambda_.running_invocations import FunctionThrottled
from redis_migration_ops.rehearsal.ledger import (
    KEY_PREFIX,
    LEDGER_FILE,
    Ledger,
    LedgerEntry,
    LedgerVerdict,
    check_ledger,
)

if TYPE_CHECKING:
    from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
    from redis_migration_ops.local_engine.engine import LocalEngine
    from redis_migration_ops.local_engine.sandbox_host import SandboxHost
    from redis_migration_ops.rehearsal.local_account import LocalAccount

# Writes per second per client when the rehearsal seeds data and no rate is given.
DEFAULT_RATE = 2.0
MAX_RATE = 50.0
# Bounds of every writer: however long the rehearsal, a writer stops after this many writes or seconds.
DEFAULT_MAX_WRITES = 20_000
DEFAULT_MAX_SECONDS = 3600.0
SHARED_COUNTERS = 3
# Every fifth write of a client writes its previous key again, with a new value.
REWRITE_EVERY = 5
# Every fourth write increments a shared counter.
COUNTER_EVERY = 4
# Generous: the sandbox's Redis is reached through a forwarder thread of this process, which a busy
# rehearsal can starve for a second or two (a timeout is a write of unknown outcome, not a loss).
SOCKET_TIMEOUT_S = 10.0
STOP_DEADLINE_S = 10.0
OTHER_WRITER = "other-writer"
PASSWORD_KEY = "REDIS_PASSWORD_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
_HOST_VARIABLE = "REDIS_HOST"
_PORT_VARIABLE = "REDIS_PORT"


@dataclass(frozen=True)
class WriterSettings:
    """How fast and how long the writers write."""

    rate: float = DEFAULT_RATE  # writes per second, per client
    max_writes: int = DEFAULT_MAX_WRITES  # per client
    max_seconds: float = DEFAULT_MAX_SECONDS
    other_writer: bool = False
    # One writer per client function (False: only the other writer, if any).
    function_writers: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.rate <= MAX_RATE:
            raise ValueError(
                f"--client-writes {self.rate}: between 0 (off) and {MAX_RATE:g} writes per second"
            )


@dataclass(frozen=True)
class RedisTarget:
    """Where a client's configuration says to write, and how to connect."""

    address: str  # host:port, the host normalised (lower case, no trailing dot)
    host: str
    port: int
    db: int
    tls: bool
    kind: Literal["elasticache", "self-hosted"]
    # The secret holding the password (None: the account's token, or no password).
    secret_arn: str | None = None


def other_writer_source(engine: LocalEngine, vpc_cidr: str) -> AbstractContextManager[None]:
    """The network identity of ``--other-writer``: a client the run does not know (a cron job on
    some host, an ECS task outside the plan): an address inside the VPC that no network interface
    of the account holds, so ElastiCache's ``CLIENT LIST`` shows it and nothing can name it."""
    network = ipaddress.ip_network(vpc_cidr, strict=False)
    # Far from the low addresses moto hands out and the high ones Lambda's interfaces take.
    address = network.network_address + min(network.num_addresses // 2 + 17, network.num_addresses - 2)
    return engine.acting_as_address(str(address))


class ClientConfiguration:
    """Where each client function writes, read from its configuration at the moment of asking."""

    def __init__(self, engine: LocalEngine, account: LocalAccount, elasticache_names: list[str]) -> None:
        self.engine = engine
        self.account = account
        source = account.description.elasticache if account.description is not None else None
        self.cache_port = source.port if source is not None else 6379
        self.cache_tls = bool(source.transit_encryption) if source is not None else False
        addresses = [account.elasticache_endpoint, *elasticache_names]
        if account.replication_group_id:
            groups = engine.client("elasticache").describe_replication_groups(
                ReplicationGroupId=account.replication_group_id
            )["ReplicationGroups"]
            addresses += [address for group in groups for address in endpoint_addresses(group)]
        self.cache = CacheNames.of(addresses, self.cache_port)
        self.self_hosted = CacheNames.of([account.private_ip])

    def variables(self, function_name: str) -> dict[str, str]:
        configuration = self.engine.client("lambda").get_function_configuration(FunctionName=function_name)
        return dict(configuration.get("Environment", {}).get("Variables", {}))

    def target(self, function_name: str) -> RedisTarget | None:
        """Where ``function_name`` writes now (None: its configuration names no Redis it can reach)."""
        return self.target_of(self.variables(function_name))

    def uses_cache(self, variables: dict[str, str]) -> bool:
        return bool(references_to(variables, self.cache))

    def target_of(self, variables: dict[str, str]) -> RedisTarget | None:
        """REDIS_HOST (+REDIS_PORT), else a URL, else host:port, else a bare host in another variable."""
        found = [(ref, "elasticache") for ref in references_to(variables, self.cache)]
        found += [(ref, "self-hosted") for ref in references_to(variables, self.self_hosted)]
        order = {"url": 1, "host:port": 2, "host": 3}
        usable = [(ref, kind) for ref, kind in found if ref.form in order]
        if not usable:
            return None
        reference, kind = min(
            usable,
            key=lambda item: (
                0 if item[0].variable == _HOST_VARIABLE else order[item[0].form],
                item[0].variable,
            ),
        )
        return self._target(reference, kind, variables)

    def _target(self, reference: RedisReference, kind: str, variables: dict[str, str]) -> RedisTarget:
        default_port = self.cache_port if kind == "elasticache" else 6379
        port = reference.port
        if port is None and reference.variable == _HOST_VARIABLE:
            try:
                port = int(variables.get(_PORT_VARIABLE) or default_port)
            except ValueError:
                port = default_port
        port = port or default_port
        db = 0
        if reference.form == "url" and reference.path.strip("/").isdigit():
            db = int(reference.path.strip("/"))
        host = normalized_host(reference.host)
        if kind == "elasticache":
            return RedisTarget(
                address=f"{host}:{port}",
                host=host,
                port=port,
                db=db,
                tls=reference.tls or self.cache_tls,
                kind="elasticache",
                secret_arn=self._token_secret(variables),
            )
        return RedisTarget(
            address=f"{host}:{port}",
            host=host,
            port=port,
            db=db,
            tls=reference.tls,
            kind="self-hosted",
            secret_arn=variables.get(PASSWORD_KEY) or None,
        )

    @staticmethod
    def _token_secret(variables: dict[str, str]) -> str | None:
        """The secret the function reads ElastiCache's AUTH token from, as its variables name it."""
        if variables.get(OLD_AUTH_KEY, "").startswith("arn:"):
            return variables[OLD_AUTH_KEY]
        return next(
            (
                value
                for key, value in sorted(variables.items())
                if key != PASSWORD_KEY and value.startswith("arn:") and ":secretsmanager:" in value
            ),
            None,
        )

    def password(self, target: RedisTarget) -> str | None:
        """The password for ``target``, read as the function would (from its secret)."""
        if target.secret_arn is not None:
            value = self.engine.client("secretsmanager").get_secret_value(SecretId=target.secret_arn)
            return password_in_secret(str(value["SecretString"]))
        return self.account.elasticache_auth_token if target.kind == "elasticache" else None

    def cache_target(self) -> RedisTarget:
        """ElastiCache's primary endpoint, as a client the run does not switch is configured."""
        host = normalized_host(self.account.elasticache_endpoint)
        return RedisTarget(
            address=f"{host}:{self.cache_port}",
            host=host,
            port=self.cache_port,
            db=0,
            tls=self.cache_tls,
            kind="elasticache",
        )


@dataclass
class WriterStats:
    """What one writer did."""

    acknowledged: int = 0
    throttled: int = 0
    failed: int = 0  # refused, or never sent (nothing happened)
    unanswered: int = 0  # sent, no answer (timeout, broken connection): may or may not have happened
    unreachable: int = 0  # its configuration named no Redis the writer can reach
    last_error: str | None = None
    # Each time the writer connected somewhere else: (when, host:port).
    connections: list[tuple[str, str]] = field(default_factory=list)

    def as_report(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "throttled": self.throttled,
            "failed": self.failed,
            "unanswered": self.unanswered,
            "unreachable": self.unreachable,
            "lastError": self.last_error,
            "connections": [{"at": at, "redis": address} for at, address in self.connections],
        }


class ClientWriter(threading.Thread):
    """One client's writes (see the module doc); stops when ``stop`` is set or a bound is reached."""

    def __init__(
        self,
        client: str,
        *,
        invocation: Callable[[], AbstractContextManager[None]],
        target: Callable[[], RedisTarget | None],
        password: Callable[[RedisTarget], str | None],
        ledger: Ledger,
        settings: WriterSettings,
        stop: threading.Event,
        counter_prefix: str = f"{KEY_PREFIX}counter:",
    ) -> None:
        super().__init__(name=f"writer-{client}", daemon=True)
        self.client = client
        self._invocation = invocation
        self._target = target
        self._password = password
        self._ledger = ledger
        self._settings = settings
        self._stop_requested = stop
        self._counter_prefix = counter_prefix
        self.stats = WriterStats()
        self._connection: redis.Redis | None = None
        self._connected_to: RedisTarget | None = None
        self._written = 0  # unique keys written
        self._sequence = 0
        self._pending: LedgerEntry | None = None  # the write sent and not yet answered

    def run(self) -> None:
        interval = 1.0 / self._settings.rate
        deadline = time.monotonic() + self._settings.max_seconds
        next_at = time.monotonic()
        try:
            while self._sequence < self._settings.max_writes and time.monotonic() < deadline:
                if self._stop_requested.wait(max(0.0, next_at - time.monotonic())):
                    return
                next_at += interval
                self._sequence += 1
                self._invoke()
        finally:
            self._disconnect()

    def _invoke(self) -> None:
        try:
            with self._invocation():
                target = self._target()
                if target is None:
                    self.stats.unreachable += 1
                    return
                self._write(target)
        except FunctionThrottled:
            self.stats.throttled += 1
        except (BotoCoreError, ClientError) as error:
            # Reading the function's configuration or its secret failed: nothing was sent.
            self.stats.failed += 1
            self.stats.last_error = f"{type(error).__name__}: {error}"[:300]
        except (redis.RedisError, OSError) as error:
            # Not acknowledged; the next write connects again.
            self.stats.last_error = f"{type(error).__name__}: {error}"[:300]
            if self._pending is not None and isinstance(
                error, (redis.ConnectionError, redis.TimeoutError, OSError)
            ):
                # Sent, and no answer came: it may have happened. Recorded as such, never as acknowledged.
                self.stats.unanswered += 1
                self._ledger.record(replace(self._pending, acknowledged=False))
            else:
                self.stats.failed += 1
            self._disconnect()
        finally:
            self._pending = None

    def _write(self, target: RedisTarget) -> None:
        connection = self._connect(target)
        number = self._sequence
        if number % COUNTER_EVERY == 0:
            key = f"{self._counter_prefix}{number // COUNTER_EVERY % SHARED_COUNTERS}"
            increment = number % 7 + 1
            connection.incrby(key, increment)
            self._record(target, key, increment, "incrby")
            return
        if number % REWRITE_EVERY == 0 and self._written:
            index = self._written  # its latest key, written again
        else:
            self._written += 1
            index = self._written
        key = f"{KEY_PREFIX}{self.client}:{index}"
        value = f"{self.client}:{index}:{number}"
        connection.set(key, value)
        self._record(target, key, value, "set")

    def _record(
        self, target: RedisTarget, key: str, value: str | int, kind: Literal["set", "incrby"]
    ) -> None:
        self.stats.acknowledged += 1
        self._ledger.record(
            LedgerEntry(
                client=self.client,
                db=target.db,
                key=key,
                value=value,
                redis=target.address,
                at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                kind=kind,
            )
        )

    def _connect(self, target: RedisTarget) -> redis.Redis:
        if self._connection is not None and self._connected_to == target:
            return self._connection
        self._disconnect()
        kwargs: dict[str, Any] = {
            "host": target.host,
            "port": target.port,
            "db": target.db,
            "password": self._password(target),
            "socket_timeout": SOCKET_TIMEOUT_S,
            "socket_connect_timeout": SOCKET_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
            "protocol": 2,
            "driver_info": None,
            "decode_responses": True,
        }
        if target.tls:
            # The process's trust store and the host name checked, as a client in AWS does.
            kwargs |= {"ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True}
        self._connection = redis.Redis(**kwargs)
        self._connected_to = target
        self.stats.connections.append((_now(), target.address))
        return self._connection

    def _disconnect(self) -> None:
        connection, self._connection, self._connected_to = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                connection.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class LocalServers:
    """The check's view of the servers, read over loopback outside the workflow (see ledger.RedisReader)."""

    def __init__(
        self,
        configuration: ClientConfiguration,
        elasticache: ElastiCacheEndpoint,
        sandbox: SandboxHost,
        self_hosted_password: str | None,
        ports: set[int],
    ) -> None:
        self._configuration = configuration
        self._elasticache = elasticache
        self._sandbox = sandbox
        self._password = self_hosted_password
        self._ports = sorted(ports | {6379})

    def server_of(self, address: str) -> str | None:
        host, _, port = address.rpartition(":")
        if self._configuration.cache.names(host):
            return "elasticache"
        if self._configuration.self_hosted.names(host) and port.isdigit():
            return f"self-hosted:{port}"
        return None

    def servers(self) -> list[str]:
        return ["elasticache", *(f"self-hosted:{port}" for port in self._ports)]

    def names(self, server: str) -> list[str]:
        account = self._configuration.account
        if server == "elasticache":
            return [
                *self._elasticache.hostnames,
                *([account.replication_group_id] if account.replication_group_id else []),
            ]
        return [account.private_ip, account.instance_id]

    def get(self, server: str, db: int, keys: list[str] | Any) -> list[str | None]:
        keys = list(keys)
        if server == "elasticache":
            kwargs = {**self._elasticache.connection_kwargs(), "db": db}
        else:
            host, port = self._sandbox.loopback_address(int(server.rpartition(":")[2]))
            kwargs = {
                "host": host,
                "port": port,
                "db": db,
                "password": self._password,
                "socket_timeout": 10.0,
                "protocol": 2,
                "driver_info": None,
            }
        client: Any = redis.Redis(**kwargs, decode_responses=True)
        try:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            values = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.AuthenticationError, redis.TimeoutError, OSError):
            return [None] * len(keys)
        finally:
            client.close()
        return [value if isinstance(value, str) else None for value in values]


class ClientWrites:
    """Every writer of a rehearsal, its ledger, and its check (a context manager: writers stop on exit)."""

    def __init__(
        self,
        engine: LocalEngine,
        account: LocalAccount,
        *,
        elasticache: ElastiCacheEndpoint,
        sandbox: SandboxHost,
        workdir: Path,
        settings: WriterSettings,
    ) -> None:
        self.engine = engine
        self.account = account
        self.elasticache = elasticache
        self.sandbox = sandbox
        self.settings = settings
        self.ledger = Ledger(workdir / LEDGER_FILE)
        self.configuration = ClientConfiguration(engine, account, elasticache.hostnames)
        self._stop = threading.Event()
        self.writers: list[ClientWriter] = []
        self.functions = [
            name
            for name in account.all_functions
            if self.configuration.uses_cache(self.configuration.variables(name))
        ]

    def __enter__(self) -> ClientWrites:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """One writer per function that uses the cache (and the other writer), each in its thread."""
        if self.writers:
            raise RuntimeError("the writers are already running")
        engine, configuration = self.engine, self.configuration
        for name in self.functions if self.settings.function_writers else []:
            self.writers.append(
                ClientWriter(
                    name,
                    invocation=lambda name=name: engine.client_invocation(name),  # type: ignore[misc]
                    target=lambda name=name: configuration.target(name),  # type: ignore[misc]
                    password=configuration.password,
                    ledger=self.ledger,
                    settings=self.settings,
                    stop=self._stop,
                )
            )
        if self.settings.other_writer:
            target = configuration.cache_target()
            vpcs = engine.client("ec2").describe_vpcs(VpcIds=[self.account.vpc_id])["Vpcs"]
            vpc_cidr = str(vpcs[0]["CidrBlock"])
            self.writers.append(
                ClientWriter(
                    OTHER_WRITER,
                    invocation=lambda: other_writer_source(engine, vpc_cidr),
                    target=lambda: target,
                    password=configuration.password,
                    ledger=self.ledger,
                    settings=self.settings,
                    stop=self._stop,
                    counter_prefix=f"{KEY_PREFIX}{OTHER_WRITER}:counter:",
                )
            )
        for writer in self.writers:
            writer.start()

    def stop(self) -> None:
        """Stop every writer (an invocation in flight finishes first); bounded."""
        self._stop.set()
        deadline = time.monotonic() + STOP_DEADLINE_S
        for writer in self.writers:
            writer.join(max(0.0, deadline - time.monotonic()))

    def end_addresses(self) -> dict[str, str | None]:
        """Client -> the host:port its configuration names now."""
        ends: dict[str, str | None] = {}
        for writer in self.writers:
            if writer.client == OTHER_WRITER:
                ends[writer.client] = self.configuration.cache_target().address
            else:
                target = self.configuration.target(writer.client)
                ends[writer.client] = target.address if target is not None else None
        return ends

    def check(self, to_do: list[str], self_hosted_password: str | None) -> LedgerVerdict:
        """The ledger against the servers (call after :meth:`stop`)."""
        entries = self.ledger.entries()
        ports = {
            int(entry.redis.rpartition(":")[2])
            for entry in entries
            if entry.redis.rpartition(":")[2].isdigit()
        }
        servers = LocalServers(
            self.configuration, self.elasticache, self.sandbox, self_hosted_password, ports
        )
        return check_ledger(entries, self.end_addresses(), servers, to_do)

    def report(self, verdict: LedgerVerdict) -> dict[str, Any]:
        """The report's ``ledger`` section: the verdict, the file, and what each writer did."""
        return {
            **verdict.as_report(),
            "file": str(self.ledger.path),
            "rate": self.settings.rate,
            "throttled": sum(writer.stats.throttled for writer in self.writers),
            "failed": sum(writer.stats.failed for writer in self.writers),
            "unanswered": sum(writer.stats.unanswered for writer in self.writers),
            "clients": {writer.client: writer.stats.as_report() for writer in self.writers},
        }
