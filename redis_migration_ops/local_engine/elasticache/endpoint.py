"""The rehearsal's ElastiCache: a real redis-server on loopback behind the replication group's endpoint.

moto describes a replication group (``CreateReplicationGroup`` records its settings) but nothing
answers on its endpoint. This module starts a ``redis-server`` that behaves, for a client, the way
an ElastiCache for Redis OSS primary does, and makes the endpoint's host name lead to it:

- **AUTH token.** The server demands the token the account's auth-token secret holds (ElastiCache:
  "Authenticating with the Valkey and Redis OSS AUTH command",
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html). The token is configured as the
  default user's SHA-256 (no plaintext in the config file).
- **In-transit encryption.** With ``transitEncryption`` the server speaks TLS only (no plaintext
  port), as ElastiCache does ("ElastiCache in-transit encryption (TLS)",
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/in-transit-encryption.html). AUTH is only
  possible with TLS there, and so here. The certificate is issued by a local certificate authority
  for the endpoint's host names (the account's endpoint and those moto reports for the group).
- **Restricted commands.** ElastiCache makes ``bgrewriteaof, bgsave, config, debug, migrate,
  replicaof, save, slaveof, shutdown, sync`` unavailable ("Restricted commands",
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ClientConfig.RestrictedCommands.html), and
  ``psync`` with ``sync``; here they are renamed away, so a client that sends one gets
  ``unknown command`` exactly as it would there.
- **Parameter group.** A custom group's parameters that are Redis settings (``maxmemory-policy``,
  ``notify-keyspace-events``, ...) are applied; without one, ElastiCache's default
  ``maxmemory-policy volatile-lru`` ("Redis OSS-specific parameters",
  https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/ParameterGroups.Engine.html).

Where the rehearsal differs: the data lives in an append-only file under the rehearsal's workdir
(``<workdir>/data``), so a reader can check a copy independently (ElastiCache keeps its data out of
reach); the server is the machine's redis-server (7.0 on Debian 12), whatever engine version the
description names.

Product code does not know it is rehearsed: it connects to the endpoint's host name and port, which
the engine's :class:`~redis_migration_ops.local_engine.ec2.network_guard.NetworkGuard` maps to this
server, and it verifies the certificate with the process's default trust store, to which the
engine adds the local certificate authority (``SSL_CERT_FILE``, restored when the engine stops):
the way code in AWS trusts the certificate authority that signs ElastiCache's certificates.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from redis_migration_ops.local_engine.ec2.private_network import PrivateNetwork
from redis_migration_ops.local_engine.elasticache.monitoring import (
    MONITORING_CONNECTIONS,
    NodeMonitor,
    RespConnection,
    RespError,
)
from redis_migration_ops.rehearsal.local_redis import free_port

if TYPE_CHECKING:
    from redis_migration_ops.local_engine.engine import LocalEngine
    from redis_migration_ops.rehearsal.local_account import LocalAccount

# The commands ElastiCache makes unavailable (see the module doc), lower case.
RESTRICTED_COMMANDS: tuple[str, ...] = (
    "bgrewriteaof",
    "bgsave",
    "config",
    "debug",
    "migrate",
    "replicaof",
    "save",
    "slaveof",
    "shutdown",
    "sync",
    "psync",
)
# Replication needs these on the primary: with replicas, clients are refused them by ACL instead.
REPLICATION_COMMANDS = frozenset({"psync", "sync"})
REPLICATION_USER = "replication"
# ElastiCache: up to 5 read replicas per shard (cluster mode disabled).
MAX_REPLICAS = 5
# ElastiCache's default parameter group value.
DEFAULT_MAXMEMORY_POLICY = "volatile-lru"
# Parameters of a custom parameter group that are applied to the stand-in (Redis settings with the
# same name and meaning); any other parameter is recorded in ``not_applied``.
APPLIED_PARAMETERS = frozenset(
    {
        "maxmemory-policy",
        "maxmemory-samples",
        "notify-keyspace-events",
        "timeout",
        "tcp-keepalive",
        "databases",
        "lfu-log-factor",
        "lfu-decay-time",
        "hash-max-listpack-entries",
        "hash-max-listpack-value",
        "list-max-listpack-size",
        "set-max-intset-entries",
        "zset-max-listpack-entries",
        "zset-max-listpack-value",
        "slowlog-log-slower-than",
        "slowlog-max-len",
        "lua-time-limit",
        "proto-max-bulk-len",
        "client-query-buffer-limit",
    }
)
START_DEADLINE_S = 15.0
STOP_DEADLINE_S = 15.0
SEED_PIPELINE = 500
CERTIFICATE_DAYS = 7


class ElastiCacheStandInError(RuntimeError):
    """The stand-in could not be started, or was used the wrong way."""


class SeedCommandsFailed(ElastiCacheStandInError):
    """A line of a seed-commands file could not be parsed, or the server refused it."""


# ---------------------------------------------------------------------------------------------
# Certificates.


@dataclass(frozen=True)
class TlsFiles:
    """A local certificate authority and the server certificate it issued (PEM files)."""

    ca_certificate: Path
    server_certificate: Path
    server_key: Path
    # The local CA followed by the system's trust store: what SSL_CERT_FILE names.
    trust_bundle: Path


def issue_certificates(directory: Path, hostnames: Sequence[str]) -> TlsFiles:
    """Create a CA and a server certificate whose subject alternative names are ``hostnames``.

    Keys are P-256 (fast to make, accepted by every TLS client); private keys are written 0600.
    """
    if not hostnames:
        raise ElastiCacheStandInError("the certificate needs at least one host name")
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=CERTIFICATE_DAYS))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis-migration rehearsal CA")])
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for name in dict.fromkeys(hostnames):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(
        ca_certificate=directory / "ca.crt",
        server_certificate=directory / "server.crt",
        server_key=directory / "server.key",
        trust_bundle=directory / "trust-bundle.pem",
    )
    ca_pem = ca_certificate.public_bytes(serialization.Encoding.PEM)
    files.ca_certificate.write_bytes(ca_pem)
    files.server_certificate.write_bytes(server_certificate.public_bytes(serialization.Encoding.PEM))
    _write_private(
        files.server_key,
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    # SSL_CERT_FILE replaces OpenSSL's default file: keep the system's authorities in the bundle so
    # nothing else the process trusts stops being trusted.
    system = ssl.get_default_verify_paths().cafile
    system_pem = Path(system).read_bytes() if system and Path(system).is_file() else b""
    files.trust_bundle.write_bytes(ca_pem + b"\n" + system_pem)
    return files


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)


# ---------------------------------------------------------------------------------------------
# redis-cli's argument syntax (sdssplitargs in the Redis source), for seed-commands files.

_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_BLANKS = b" \n\r\t\0"
_HEX = b"0123456789abcdefABCDEF"


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(byte in _HEX for byte in pair)


def split_redis_cli_line(line: bytes) -> list[bytes]:
    """The arguments of one line as redis-cli splits it (``sdssplitargs`` in the Redis source):
    blanks separate; ``"..."`` takes the escapes ``\\n \\r \\t \\b \\a \\xHH`` (any other
    escaped byte stands for itself); ``'...'`` takes ``\\'``; a quote may start inside a word; a
    closing quote must be followed by a blank or the end. Raises ValueError for unbalanced quotes."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _BLANKS:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if i >= n:
                if in_double or in_single:
                    raise ValueError(f"unbalanced {'double' if in_double else 'single'} quotes")
                break
            c = line[i]
            if in_double:
                if c == 0x5C and line[i + 1 : i + 2] == b"x" and _is_hex(line[i + 2 : i + 4]):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current += _ESCAPES.get(line[i], line[i : i + 1])
                elif c == 0x22:
                    if i + 1 < n and line[i + 1] not in _BLANKS:
                        raise ValueError("a closing double quote must be followed by a blank")
                    i += 1
                    break
                else:
                    current.append(c)
            elif in_single:
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:
                    if i + 1 < n and line[i + 1] not in _BLANKS:
                        raise ValueError("a closing single quote must be followed by a blank")
                    i += 1
                    break
                else:
                    current.append(c)
            elif c in _BLANKS:
                break
            elif c == 0x22:
                in_double = True
            elif c == 0x27:
                in_single = True
            else:
                current.append(c)
            i += 1
        args.append(bytes(current))


# ---------------------------------------------------------------------------------------------
# The stand-in.


@dataclass(frozen=True)
class SeedSummary:
    """What :meth:`ElastiCacheEndpoint.seed_keys` wrote."""

    keys: int
    by_type: dict[str, int]
    with_ttl: int
    binary_names: int
    large_keys: list[bytes] = field(default_factory=list)


@dataclass
class StandInNode:
    """One node of the stand-in's replication group: a redis-server of its own."""

    index: int  # 0: the primary; 1, 2 ...: replicas
    workdir: Path
    # Where the server listens: inside the private network, or on the machine's loopback.
    port: int = 0
    # Where tools on this machine reach it (the network's forwarder, or the port itself).
    loopback_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    monitor: NodeMonitor | None = None

    @property
    def role(self) -> str:
        return "primary" if self.index == 0 else "replica"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        return self.workdir / "redis.log"


class ElastiCacheEndpoint:
    """A redis-server standing in for one ElastiCache replication group (see the module doc).

    Use as a context manager (or :meth:`start` / :meth:`stop`). ``hostnames`` are the names the
    certificate is issued for (the first is the one clients are configured with); ``port`` is the
    endpoint's port. ``auth_token`` None: no AUTH (ElastiCache without a token); ``tls`` False:
    plaintext. ``replicas``: read replicas, each a redis-server replicating the primary.
    ``network``: run the nodes in that private network (``ec2/private_network.py``), where each
    client connects from its own address; without one, the nodes listen on the machine's
    loopback and every client is 127.0.0.1. Each node keeps ElastiCache's monitoring connections
    (``elasticache/monitoring.py``).
    """

    def __init__(
        self,
        workdir: Path,
        hostnames: Sequence[str],
        *,
        port: int = 6379,
        auth_token: str | None,
        tls: bool = True,
        parameters: dict[str, str] | None = None,
        maxmemory: str | None = None,
        redis_server: str = "redis-server",
        replicas: int = 0,
        network: PrivateNetwork | None = None,
        monitoring_connections: int = MONITORING_CONNECTIONS,
    ) -> None:
        if auth_token is not None and not tls:
            # As CreateReplicationGroup refuses it.
            raise ElastiCacheStandInError("an AUTH token needs in-transit encryption (tls=True)")
        if not hostnames:
            raise ElastiCacheStandInError("the endpoint needs a host name")
        if not 0 <= replicas <= MAX_REPLICAS:
            raise ElastiCacheStandInError(
                f"a replication group has 0 to {MAX_REPLICAS} replicas, not {replicas}"
            )
        # Absolute: redis-server runs in a directory of its own, and a relative log or data path
        # (``rehearse --workdir rehearsal-output``, the README's command) would not open there.
        self.workdir = workdir.resolve()
        self.hostnames = list(dict.fromkeys(name.lower() for name in hostnames))
        self.port = port
        self.tls = tls
        self.network = network
        self._auth_token = auth_token
        self._parameters = dict(parameters or {})
        self._maxmemory = maxmemory
        self._redis_server = redis_server
        self._monitoring_connections = monitoring_connections
        self.tls_files: TlsFiles | None = None
        self.not_applied: list[str] = sorted(set(self._parameters) - APPLIED_PARAMETERS)
        self.nodes = [StandInNode(0, self.workdir)] + [
            StandInNode(index, self.workdir / f"replica-{index + 1:03d}") for index in range(1, replicas + 1)
        ]
        # The replicas' own user on the primary (never a secret of the account: made here, per start).
        self._replication_password = ""
        self._idle: list[RespConnection] = []
        self._lock_fd: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The host name clients are configured with."""
        return self.hostnames[0]

    @property
    def primary(self) -> StandInNode:
        return self.nodes[0]

    @property
    def loopback_port(self) -> int:
        """Where tools on this machine reach the primary."""
        return self.primary.loopback_port

    @property
    def data_dir(self) -> Path:
        """Where the primary keeps its append-only file (``appendonlydir/``)."""
        return self.primary.data_dir

    @property
    def log_file(self) -> Path:
        return self.primary.log_file

    @property
    def pid(self) -> int | None:
        process = self.primary.process
        return process.pid if process is not None else None

    def __enter__(self) -> ElastiCacheEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write the configs (and certificates), start every node, wait (bounded) until each answers
        and every replica has synchronised, then open ElastiCache's monitoring connections."""
        if self.primary.process is not None:
            raise ElastiCacheStandInError("the stand-in is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.tls:
            self.tls_files = issue_certificates(self.workdir / "tls", self.hostnames)
        self._replication_password = secrets.token_hex(24)
        self.primary.data_dir.mkdir(parents=True, exist_ok=True)
        self._claim_data_dir()
        try:
            for node in self.nodes:
                self._start_node(node)
            for node in self.nodes[1:]:
                self._wait_until_synchronised(node)
            for node in self.nodes:
                node.monitor = NodeMonitor(
                    lambda node=node: self._open_socket(node),  # type: ignore[misc]
                    self._tls_context(),
                    self._auth_token,
                    connections=self._monitoring_connections,
                )
                node.monitor.start()
        except BaseException:
            self.stop()
            raise

    def fail_over(self) -> None:
        """A failover, a node replacement or maintenance as clients see it: the primary's server
        process is replaced by a new one (a new ``run_id``), with the same data and the same
        address; every connection to it breaks and the replicas synchronise again."""
        node = self.primary
        process = node.process
        if process is None:
            raise ElastiCacheStandInError("the stand-in is not running")
        if node.monitor is not None:
            node.monitor.stop()
            node.monitor = None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_DEADLINE_S)
        argv = [self._redis_server, str(node.workdir / "redis.conf")]
        with (node.workdir / "redis.out").open("ab") as output:
            if self.network is not None:
                node.process = self.network.spawn(argv, stdout=output, stderr=subprocess.STDOUT)
            else:
                node.process = _spawn_dying_with_owner(argv, output)
        self._wait_until_answering(node)
        for replica in self.nodes[1:]:
            self._wait_until_synchronised(replica)
        node.monitor = NodeMonitor(
            lambda: self._open_socket(node),
            self._tls_context(),
            self._auth_token,
            connections=self._monitoring_connections,
        )

    @property
    def run_id(self) -> str:
        """The primary's server process's ``run_id`` (INFO server)."""
        with contextlib.closing(self.admin_client()) as client:
            return str(client.info("server")["run_id"])

    def _claim_data_dir(self) -> None:
        """One server per data folder: a second stand-in on the same folder would write the same
        append-only file. The lock (``flock``) goes with this object's stop, or with the process."""
        lock = self.data_dir / ".stand-in.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ElastiCacheStandInError(
                f"another ElastiCache stand-in (pid {owner}) already runs on {self.data_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _start_node(self, node: StandInNode) -> None:
        if node.index:
            # A replica starts empty and takes the primary's data (the primary's AOF is the data).
            shutil.rmtree(node.workdir, ignore_errors=True)
        node.workdir.mkdir(parents=True, exist_ok=True)
        node.data_dir.mkdir(exist_ok=True)
        if self.network is not None:
            node.port = self.port + node.index
            node.loopback_port = self.network.forward(node.port)[1]
        else:
            node.port = node.loopback_port = free_port()
        config = node.workdir / "redis.conf"
        _write_private(config, self._config(node).encode())
        argv = [self._redis_server, str(config)]
        # A config the server refuses is reported on stdout before the log file is opened.
        with (node.workdir / "redis.out").open("wb") as output:
            if self.network is not None:
                node.process = self.network.spawn(argv, stdout=output, stderr=subprocess.STDOUT)
            else:
                node.process = _spawn_dying_with_owner(argv, output)
        self._wait_until_answering(node)

    def _user(self, node: StandInNode) -> list[str]:
        secret = f"#{hashlib.sha256(self._auth_token.encode()).hexdigest()}" if self._auth_token else "nopass"
        if node.index or len(self.nodes) == 1:
            return [f"user default on {secret} ~* &* +@all"] if self._auth_token is not None else []
        # A primary with replicas: they need PSYNC and SYNC, which clients may not use (a client gets
        # NOPERM here where ElastiCache answers "unknown command"); a user of their own has them.
        replication = hashlib.sha256(self._replication_password.encode()).hexdigest()
        return [
            f"user default on {secret} ~* &* +@all -psync -sync",
            f"user {REPLICATION_USER} on #{replication} +psync +sync +replconf +ping",
        ]

    def _config(self, node: StandInNode) -> str:
        lines = [
            "# The rehearsal's ElastiCache (redis_migration_ops.local_engine.elasticache.endpoint), "
            f"node {node.index + 1} ({node.role})",
            "bind 127.0.0.1",
            # In its private network every client connects from its own (VPC) address, as to
            # ElastiCache, which has no protected mode; on the machine's loopback, keep it.
            f"protected-mode {'no' if self.network is not None else 'yes'}",
            f"dir {node.data_dir}",
            f"logfile {node.log_file}",
            "daemonize no",
            "save ''",
            "appendonly yes",
            "appendfsync everysec",
            f"maxmemory-policy {self._parameters.get('maxmemory-policy', DEFAULT_MAXMEMORY_POLICY)}",
        ]
        if self._maxmemory:
            lines.append(f"maxmemory {self._maxmemory}")
        if self.tls:
            assert self.tls_files is not None  # issued in start()
            lines += [
                "port 0",
                f"tls-port {node.port}",
                f"tls-cert-file {self.tls_files.server_certificate}",
                f"tls-key-file {self.tls_files.server_key}",
                f"tls-ca-cert-file {self.tls_files.ca_certificate}",
                # ElastiCache authenticates clients by token, not by client certificate.
                "tls-auth-clients no",
                'tls-protocols "TLSv1.2 TLSv1.3"',
            ]
        else:
            lines.append(f"port {node.port}")
        lines += self._user(node)
        if node.index == 0 and len(self.nodes) > 1:
            # Redis waits 5 s for more replicas before a diskless sync: one start, no wait.
            lines.append("repl-diskless-sync-delay 0")
        if node.index:
            lines += [
                f"replicaof 127.0.0.1 {self.primary.port}",
                f"masteruser {REPLICATION_USER}",
                f"masterauth {self._replication_password}",
                "replica-read-only yes",
            ]
            if self.tls:
                lines.append("tls-replication yes")
        for name, value in sorted(self._parameters.items()):
            if name in APPLIED_PARAMETERS and name != "maxmemory-policy":
                lines.append(f"{name} {value if value.strip() else chr(39) * 2}")
        renamed = RESTRICTED_COMMANDS
        if node.index == 0 and len(self.nodes) > 1:
            renamed = tuple(command for command in RESTRICTED_COMMANDS if command not in REPLICATION_COMMANDS)
        lines += [f'rename-command {command} ""' for command in renamed]
        return "\n".join(lines) + "\n"

    def _wait_until_answering(self, node: StandInNode) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            assert node.process is not None
            if node.process.poll() is not None:
                raise ElastiCacheStandInError(
                    f"redis-server (node {node.index + 1}) exited with {node.process.returncode}: "
                    f"{self._log_tail(node)}"
                )
            try:
                with contextlib.closing(
                    RespConnection(self._open_socket(node, 1.0), self._tls_context(), self._auth_token)
                ) as probe:
                    if probe.command("PING") == b"PONG":
                        return
            except (ConnectionError, OSError, RespError) as error:
                if time.monotonic() > deadline:
                    raise ElastiCacheStandInError(
                        f"redis-server (node {node.index + 1}) did not answer within "
                        f"{START_DEADLINE_S:.0f} s ({error}): {self._log_tail(node)}"
                    ) from None
                time.sleep(0.05)

    def _wait_until_synchronised(self, node: StandInNode) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        with contextlib.closing(
            RespConnection(self._open_socket(node), self._tls_context(), self._auth_token)
        ) as probe:
            while True:
                raw = probe.command("INFO", "replication")
                if b"master_link_status:up" in (raw if isinstance(raw, bytes) else b""):
                    return
                if time.monotonic() > deadline:
                    raise ElastiCacheStandInError(
                        f"replica (node {node.index + 1}) did not synchronise with the primary within "
                        f"{START_DEADLINE_S:.0f} s: {self._log_tail(node)}"
                    )
                time.sleep(0.05)

    def _log_tail(self, node: StandInNode | None = None) -> str:
        node = node or self.primary
        lines: list[str] = []
        for path in (node.workdir / "redis.out", node.log_file):
            with contextlib.suppress(OSError):
                lines += [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(lines[-5:]) or "(no output)"

    def stop(self) -> None:
        """Close the monitoring and idle connections, stop every node (SIGTERM: each flushes its
        append-only file first; killed past the deadline), replicas first."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()
        try:
            for node in reversed(self.nodes):
                if node.monitor is not None:
                    node.monitor.stop()
                    node.monitor = None
                process, node.process = node.process, None
                if process is None or process.poll() is not None:
                    continue
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_DEADLINE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_DEADLINE_S)
        finally:
            fd, self._lock_fd = self._lock_fd, None
            if fd is not None:
                os.close(fd)  # releases the data folder

    # -- clients -------------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        assert self.tls_files is not None
        context = ssl.create_default_context(cafile=str(self.tls_files.ca_certificate))
        context.check_hostname = False  # reached by address, not by the endpoint's name
        return context

    def _open_socket(
        self, node: StandInNode, timeout: float = 5.0, source: str | None = None
    ) -> socket.socket:
        """A TCP connection to ``node`` from inside its network (from ``source``, else the node's own
        127.0.0.1), or on the machine's loopback."""
        if self.network is not None:
            return self.network.dial(node.port, source, timeout)
        if source is not None:
            raise ElastiCacheStandInError("client addresses need the stand-in's private network")
        return socket.create_connection(("127.0.0.1", node.port), timeout=timeout)

    def connected_clients(self, node: int = 0) -> int | None:
        """``connected_clients`` of a node as ElastiCache's monitoring reads it (its own
        connections included): what ``CurrConnections`` reports. None: the node does not answer."""
        monitor = self.nodes[node].monitor
        return monitor.connected_clients() if monitor is not None else None

    def leave_idle_connections(
        self, address: str, count: int = 1, *, node: int = 0, command: Sequence[str] = ("GET", "session")
    ) -> None:
        """Open ``count`` connections to ``node`` from ``address`` that send ``command`` once and then
        stay open, idle, until the stand-in stops: the sockets of old Lambda execution environments,
        which live on after a configuration change (ElastiCache's ``timeout`` 0 never closes them)."""
        for _ in range(count):
            connection = RespConnection(
                self._open_socket(self.nodes[node], source=address), self._tls_context(), self._auth_token
            )
            self._idle.append(connection)
            connection.command(*command)

    def connection_kwargs(self, *, socket_timeout: float = 10.0, node: int = 0) -> dict[str, Any]:
        """redis-py arguments that reach a node (the primary by default) from this machine's
        loopback (rehearsal tooling only: the certificate is checked against the local authority,
        the host name is not, since the connection does not go through the endpoint's name)."""
        kwargs: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.nodes[node].loopback_port,
            "password": self._auth_token,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "protocol": 2,
            # No CLIENT SETINFO: Redis 7.0 does not know it, and its error would show in errorstats.
            "driver_info": None,
        }
        if self.tls:
            assert self.tls_files is not None
            kwargs |= {
                "ssl": True,
                "ssl_ca_certs": str(self.tls_files.ca_certificate),
                "ssl_cert_reqs": "required",
                "ssl_check_hostname": False,
            }
        return kwargs

    def admin_client(self, *, socket_timeout: float = 10.0, node: int = 0) -> redis.Redis:
        """A client of a node for seeding and checking (see :meth:`connection_kwargs`)."""
        return redis.Redis(**self.connection_kwargs(socket_timeout=socket_timeout, node=node))

    # -- seeding -------------------------------------------------------------------------------

    def seed_keys(self, count: int, *, seed: int = 0, large_keys: int = 3) -> SeedSummary:
        """Fill database 0 with ``count`` keys of every type (see :func:`seed_mix`)."""
        with contextlib.closing(self.admin_client(socket_timeout=60.0)) as client:
            return seed_mix(client, count, seed=seed, large_keys=large_keys)

    def seed_commands(self, path: Path) -> int:
        """Run a file of Redis commands (redis-cli syntax, one per line; blank lines and lines
        starting with ``#`` skipped) on the stand-in. Answers how many commands ran; raises
        :class:`SeedCommandsFailed` naming the line of the first one that could not be parsed
        or that the server refused (the commands before it have run)."""
        with contextlib.closing(self.admin_client(socket_timeout=60.0)) as client:
            return run_command_file(client, path)


def _spawn_dying_with_owner(argv: list[str], output: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` so that it dies with this process, however this process ends (SIGKILL too).

    ``setpriv --pdeathsig KILL`` has the kernel kill the server when its parent goes; the signal
    follows the *thread* that forked it, so the server is forked by a thread that waits for it and
    lives exactly as long as it (the sandbox host does the same). Without ``setpriv`` the server
    is started plainly (and outlives a SIGKILLed owner).
    """
    if shutil.which("setpriv"):
        argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
    spawned: list[subprocess.Popen[bytes] | BaseException] = []
    ready = threading.Event()

    def keep() -> None:
        try:
            process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        except BaseException as error:  # handed to the caller, raised there
            spawned.append(error)
            ready.set()
            return
        spawned.append(process)
        ready.set()
        process.wait()

    threading.Thread(target=keep, name="elasticache-stand-in-keeper", daemon=True).start()
    ready.wait()
    result = spawned[0]
    if isinstance(result, BaseException):
        raise ElastiCacheStandInError(f"cannot start redis-server: {result}") from result
    return result


def run_command_file(client: redis.Redis, path: Path) -> int:
    """Run the commands of ``path`` (see :meth:`ElastiCacheEndpoint.seed_commands`) on ``client``."""
    batch: list[tuple[int, list[bytes]]] = []
    ran = 0

    def flush() -> None:
        nonlocal ran
        if not batch:
            return
        pipe: Any = client.pipeline(transaction=False)  # redis-py's execute_command is untyped
        for _, args in batch:
            pipe.execute_command(*args)
        replies = pipe.execute(raise_on_error=False)
        for (number, args), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                name = args[0].decode(errors="replace")
                raise SeedCommandsFailed(f"{path}:{number}: {name}: {reply}")
        ran += len(batch)
        batch.clear()

    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith(b"#"):
                continue
            try:
                args = split_redis_cli_line(stripped)
            except ValueError as error:
                flush()
                raise SeedCommandsFailed(f"{path}:{number}: {error}") from None
            batch.append((number, args))
            if len(batch) >= SEED_PIPELINE:
                flush()
    flush()
    return ran


_MIX = (
    # (type, share of the keys in percent)
    ("string", 50),
    ("hash", 15),
    ("list", 10),
    ("set", 9),
    ("zset", 10),
    ("stream", 3),
    ("hll", 3),
)


_LARGE_KINDS = ("string", "hash", "list", "zset", "set")


def _kind_of(index: int) -> str:
    slot = index % 100
    for kind, share in _MIX:
        if slot < share:
            return kind
        slot -= share
    return "string"


def _value(rng: random.Random, low: int, high: int) -> bytes:
    size = rng.randint(low, high)
    if rng.random() < 0.2:
        return rng.randbytes(size)  # binary, CR/LF and NUL included
    if rng.random() < 0.2:
        return str(rng.randint(-(10**12), 10**12)).encode()  # integer encoding
    return rng.choice([b"a", b"ok", b"campaign", b"call:"]) * max(1, size // 4)


def seed_mix(client: redis.Redis, count: int, *, seed: int = 0, large_keys: int = 3) -> SeedSummary:
    """Write ``count`` keys to database 0: half strings, then hashes, lists, sets, sorted sets,
    streams and HyperLogLogs (sparse and dense); one in five with a TTL between 1 and 48 hours
    (to the millisecond); one in ten with a binary name (NUL, CR, LF, bytes above 0x7f); and, when
    ``count`` allows, ``large_keys`` multi-megabyte keys (a 4 MiB string, a 40,000-field hash, a
    30,000-element list, ...). Deterministic for a given ``seed``."""
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible on purpose
    large = min(large_keys, count // 20)
    by_type: dict[str, int] = {}
    with_ttl = binary = 0
    large_names: list[bytes] = []
    pipe = client.pipeline(transaction=False)
    queued = 0
    for index in range(count):
        is_large = index >= count - large
        kind = _LARGE_KINDS[(count - 1 - index) % 5] if is_large else _kind_of(index)
        if index % 10 == 3 and not is_large:
            name = b"seed:bin:\x00\xff\r\n:" + index.to_bytes(4, "big") + rng.randbytes(3)
            binary += 1
        else:
            name = f"seed:{kind}:{index}".encode()
        by_type[kind] = by_type.get(kind, 0) + 1
        pipe.delete(name)  # seeding again replaces, never appends
        if is_large:
            large_names.append(name)
            _queue_large(pipe, name, kind, rng)
        else:
            _queue_small(pipe, name, kind, rng, index)
        if not is_large and rng.random() < 0.2:
            pipe.pexpire(name, rng.randint(3_600_000, 48 * 3_600_000))
            with_ttl += 1
        queued += 1
        if queued >= SEED_PIPELINE or is_large:
            pipe.execute()
            queued = 0
    pipe.execute()
    return SeedSummary(
        keys=count, by_type=by_type, with_ttl=with_ttl, binary_names=binary, large_keys=large_names
    )


def _queue_small(pipe: Any, name: bytes, kind: str, rng: random.Random, index: int) -> None:
    if kind == "string":
        pipe.set(name, _value(rng, 1, 200))
    elif kind == "hash":
        # Mostly small (listpack); one in twenty past the listpack limit (hashtable).
        fields = rng.randint(1, 20) if index % 20 else 200
        pipe.hset(name, mapping={b"f%d" % f: _value(rng, 1, 40) for f in range(fields)})
    elif kind == "list":
        pipe.rpush(name, *[_value(rng, 1, 40) for _ in range(rng.randint(1, 30))])
    elif kind == "set":
        if index % 3:
            pipe.sadd(name, *[_value(rng, 1, 30) for _ in range(rng.randint(1, 20))])
        else:
            pipe.sadd(name, *rng.sample(range(10**6), rng.randint(1, 50)))  # intset
    elif kind == "zset":
        members = {_value(rng, 1, 30): rng.uniform(-1e6, 1e6) for _ in range(rng.randint(1, 20))}
        if index % 7 == 0:
            members[b"-inf"] = float("-inf")
            members[b"third"] = 1 / 3
        pipe.zadd(name, members)
    elif kind == "stream":
        for entry in range(rng.randint(1, 5)):
            event = {b"event": _value(rng, 1, 20), b"n": str(entry).encode()}
            pipe.xadd(name, event, id=f"{index + 1}-{entry}")
    else:  # HyperLogLog: sparse, or dense past ~3,000 elements
        elements = rng.randint(1, 60) if index % 10 else 4000
        pipe.pfadd(name, *[b"e%d" % rng.randint(0, 10**9) for _ in range(elements)])


def _queue_large(pipe: Any, name: bytes, kind: str, rng: random.Random) -> None:
    if kind == "string":
        pipe.set(name, rng.randbytes(4 * 1024 * 1024))
    elif kind == "hash":
        for start in range(0, 40_000, 5_000):
            pipe.hset(name, mapping={b"field:%d" % f: rng.randbytes(64) for f in range(start, start + 5_000)})
    elif kind == "list":
        for _ in range(6):
            pipe.rpush(name, *[rng.randbytes(100) for _ in range(5_000)])
    elif kind == "zset":
        for start in range(0, 30_000, 5_000):
            members = range(start, start + 5_000)
            pipe.zadd(name, {b"member:%d:" % m + rng.randbytes(40): rng.random() for m in members})
    else:
        for start in range(0, 30_000, 5_000):
            pipe.sadd(name, *[b"member:%d:" % m + rng.randbytes(60) for m in range(start, start + 5_000)])


# ---------------------------------------------------------------------------------------------
# The rehearsal's hook.


@dataclass(frozen=True)
class GroupLayout:
    """The replication group's nodes as ElastiCache answers them, and the names leading to each."""

    # Node i's host names (node 0 is the primary): the primary also answers the account's endpoint,
    # the group's primary and configuration endpoints; the reader endpoint leads to the first
    # replica (ElastiCache spreads it over the replicas), or to the primary when there is none.
    node_names: list[list[str]]
    cluster_ids: list[str]

    @property
    def hostnames(self) -> list[str]:
        return list(dict.fromkeys(name for names in self.node_names for name in names))


def group_layout(engine: LocalEngine, account: LocalAccount) -> GroupLayout:
    """The nodes of ``account``'s replication group and their names (DescribeReplicationGroups)."""
    primary = [account.elasticache_endpoint]
    replicas: list[list[str]] = []
    cluster_ids = ["primary"]
    readers: list[str] = []
    if account.replication_group_id:
        groups = engine.client("elasticache").describe_replication_groups(
            ReplicationGroupId=account.replication_group_id
        )["ReplicationGroups"]
        for group in groups:
            primary.append(str((group.get("ConfigurationEndpoint") or {}).get("Address", "")))
            for node_group in group.get("NodeGroups", []):
                primary.append(str((node_group.get("PrimaryEndpoint") or {}).get("Address", "")))
                readers.append(str((node_group.get("ReaderEndpoint") or {}).get("Address", "")))
                members = sorted(
                    node_group.get("NodeGroupMembers", []), key=lambda m: m.get("CurrentRole") != "primary"
                )
                for position, member in enumerate(members[: MAX_REPLICAS + 1]):
                    name = str((member.get("ReadEndpoint") or {}).get("Address", ""))
                    if position == 0:
                        primary.append(name)
                        cluster_ids[0] = str(member.get("CacheClusterId", "primary"))
                    else:
                        replicas.append([name])
                        cluster_ids.append(str(member.get("CacheClusterId", f"replica-{position}")))
    (replicas[0] if replicas else primary).extend(readers)
    node_names = [[name.lower() for name in dict.fromkeys(names) if name] for names in [primary, *replicas]]
    return GroupLayout(node_names=node_names, cluster_ids=cluster_ids)


def replication_group_hostnames(engine: LocalEngine, account: LocalAccount) -> list[str]:
    """The account's endpoint, then every address moto reports for the replication group."""
    return group_layout(engine, account).hostnames


@contextlib.contextmanager
def start_elasticache_endpoint(
    engine: LocalEngine, account: LocalAccount, workdir: Path
) -> Iterator[ElastiCacheEndpoint]:
    """Start the stand-in for ``account``'s ElastiCache source, reachable at its endpoints.

    The replication group's settings come from the account description (``elasticache``: AUTH
    token from its secret, ``transitEncryption``, the port, a custom parameter group's
    parameters); its nodes from DescribeReplicationGroups: a primary and a replica per further
    node. The nodes run in a private network (``ec2/private_network.py``): each node's name (and
    the primary, reader and configuration endpoints) leads to its own server for the engine's life,
    and a connection made while acting as a client (``engine.acting_as_function``,
    ``engine.acting_as_address``) comes from that client's address. The engine trusts the local
    certificate authority until it stops. The servers and their network are stopped on exit; the
    primary's data stays in ``workdir/data``.
    """
    description = account.description
    if description is None:
        raise ElastiCacheStandInError("the local account has no description of its ElastiCache source")
    source = description.elasticache
    token = account.elasticache_auth_token if source.auth_token_enabled else None
    if source.auth_token_enabled and token is None:
        raise ElastiCacheStandInError("the account's replication group demands a token it does not know")
    parameters = dict(source.parameter_group.parameters) if source.parameter_group else {}
    layout = group_layout(engine, account)
    with PrivateNetwork("elasticache") as network:
        stand_in = ElastiCacheEndpoint(
            workdir,
            layout.hostnames,
            port=source.port,
            auth_token=token,
            tls=source.transit_encryption,
            parameters=parameters,
            replicas=len(layout.node_names) - 1,
            network=network,
        )
        with stand_in:
            for node, names in zip(stand_in.nodes, layout.node_names, strict=True):
                for hostname in names:
                    engine.map_private_address(hostname, source.port, network, node.port, node.loopback_port)
            if stand_in.tls_files is not None:
                engine.trust_certificate_authority(stand_in.tls_files.trust_bundle)
            yield stand_in
