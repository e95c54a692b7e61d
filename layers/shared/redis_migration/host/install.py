"""The install command: parameters in, SSM ``AWS-RunShellScript`` commands out, result line back.

The host script (``host/install_redis.sh``, shipped as package data) is carried inside the command
as a quoted here-document fed to ``bash -s``: ``AWS-RunShellScript`` runs its commands with
``/bin/sh`` (dash on Debian), and the instance needs nothing of ours installed beforehand. Only the
SHA-256 of the password is sent; the password never appears in the command, its output or logs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from redis_migration.host.scripts import host_script, script_command
from redis_migration.models import RedisLimits, parse_memory_size

RESULT_MARKER = "REDIS_INSTALL_RESULT "
# The install's systemd drop-in for Redis's unit (redis_facts.sh, LIMITS_DROPIN_NAME), under
# /etc/systemd/system/<unit>.service.d/.
LIMITS_DROPIN_NAME = "60-redis-migration-limits.conf"
HEREDOC_DELIMITER = "INSTALL_REDIS_SCRIPT"
SCRIPT_RESOURCE = "host/install_redis.sh"

MaxmemoryPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]

_MAXMEMORY = re.compile(r"^[0-9]{1,15}([kmg]b?|b)?$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,2}$")
# A Step Functions execution name, as the script accepts it for a directory name.
RUN_ID = re.compile(r"^[A-Za-z0-9._@+=-]{1,80}$")


def valid_run_id(value: str) -> str:
    """``value`` when it is a run id the host scripts accept (not only dots), else ValueError."""
    if not RUN_ID.fullmatch(value) or set(value) == {"."}:
        raise ValueError("must be 1-80 letters, digits or . _ @ + = - (an execution name)")
    return value


class InstallParameters(BaseModel):
    """What the install script is told. Mirrors the script's arguments one to one."""

    # hide_input_in_errors: a caller who passes the password where its hash belongs must not see
    # it echoed into a ValidationError, which ends up in logs and the execution history.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    port: int = Field(default=6379, ge=1, le=65535)
    bind_addresses: list[str] = Field(min_length=1)
    password_sha256: str = Field(repr=False)
    maxmemory: str = "512mb"
    maxmemory_policy: MaxmemoryPolicy = "allkeys-lru"
    al2023_server: Literal["valkey", "refuse"] = "valkey"
    min_version: str = "7.0"
    # The execution's name: the host's state before this run is recorded under it once, for
    # the revert (host/revert_redis_host.sh --run-id). None: nothing is recorded.
    run_id: str | None = None
    # The drop-in for Redis's unit (memory, CPU and IO weights, OOM score); None: left alone.
    limits: RedisLimits | None = None

    @field_validator("bind_addresses")
    @classmethod
    def _addresses_with_loopback(cls, value: list[str]) -> list[str]:
        for address in value:
            ipaddress.ip_address(address)  # ValueError names the bad address
        # The script checks the server over 127.0.0.1; "0.0.0.0" (all addresses) covers it.
        if not {"127.0.0.1", "0.0.0.0"} & set(value):  # noqa: S104 - recognised, not bound here
            raise ValueError("must include 127.0.0.1 (or 0.0.0.0)")
        return value

    @field_validator("password_sha256")
    @classmethod
    def _sha256_hex(cls, value: str) -> str:
        # Never echo the value: a caller passing the password here by mistake must not leak it.
        if not _SHA256_HEX.fullmatch(value):
            raise ValueError("must be 64 lowercase hex characters (the SHA-256 of the password)")
        return value

    @field_validator("maxmemory")
    @classmethod
    def _maxmemory_size(cls, value: str) -> str:
        if not _MAXMEMORY.fullmatch(value.lower()):
            raise ValueError("must look like 512mb, 1gb or a number of bytes")
        parse_memory_size(value)  # bounds: "99999999999999999999gb" is refused, not overflowed
        return value.lower()

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str | None) -> str | None:
        return None if value is None else valid_run_id(value)

    @field_validator("min_version")
    @classmethod
    def _dotted_version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError("must look like 7.0")
        return value


class InstallResult(BaseModel):
    """The script's last line: ``REDIS_INSTALL_RESULT {...}``."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    ok: bool
    changed: bool
    server: str | None = None
    version: str | None = None
    config_sha256: str | None = Field(default=None, alias="configSha256")
    service: str | None = None
    port: int | None = None
    run_id: str | None = Field(default=None, alias="runId")
    # True when this call wrote the before record (False: no run id, or a retry found it).
    recorded: bool = False
    # How an existing Redis's data was taken over: "aof-switched-on" (AOF turned on while it
    # ran), "rdb-loaded" (a stopped one started on its own config first), or None.
    takeover: str | None = None
    keys_before: int | None = Field(default=None, alias="keysBefore")
    keys_after: int | None = Field(default=None, alias="keysAfter")
    # The limits drop-in was written (or changed) by this call.
    limits_changed: bool = Field(default=False, alias="limitsChanged")
    error: str | None = None
    message: str = ""


def password_sha256(password: str) -> str:
    """The SHA-256 hex Redis 7 accepts in ``user default on #<hex>`` for ``password``."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def install_script() -> str:
    """The text bash runs on the host: the shared helpers, then the install script."""
    return host_script(SCRIPT_RESOURCE)


def script_arguments(params: InstallParameters) -> list[str]:
    """The script's arguments for ``params``, unquoted."""
    run_id = ["--run-id", params.run_id] if params.run_id is not None else []
    limits = params.limits
    limit_arguments = (
        [
            "--memory-high", str(limits.memory_high),
            "--memory-max", str(limits.memory_max),
            "--cpu-weight", str(limits.cpu_weight),
            "--io-weight", str(limits.io_weight),
            "--oom-score-adjust", str(limits.oom_score_adjust),
        ]
        if limits is not None
        else []
    )  # fmt: skip
    return [
        "--port", str(params.port),
        "--bind", " ".join(params.bind_addresses),
        "--password-sha256", params.password_sha256,
        "--maxmemory", params.maxmemory,
        "--maxmemory-policy", params.maxmemory_policy,
        "--al2023-server", params.al2023_server,
        "--min-version", params.min_version,
        *run_id,
        *limit_arguments,
    ]  # fmt: skip


def build_install_commands(params: InstallParameters) -> list[str]:
    """The ``commands`` parameter of ``AWS-RunShellScript`` that runs the install on the host."""
    return script_command(SCRIPT_RESOURCE, script_arguments(params))


def parse_install_result(output: str) -> InstallResult | None:
    """The last complete result line in ``output`` (SSM may have cut the start), or None."""
    for line in reversed(output.splitlines()):
        position = line.find(RESULT_MARKER)
        if position < 0:
            continue
        try:
            return InstallResult.model_validate(json.loads(line[position + len(RESULT_MARKER) :]))
        except (ValueError, ValidationError):
            continue  # a result line cut in the middle: look for an earlier complete one
    return None
