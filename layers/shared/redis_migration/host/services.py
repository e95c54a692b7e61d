"""Host services: systemd units on the instance that use Redis (``hostServices``), switched like
the functions through ``host/host_services.sh``; in the consistent data mode, stopped for the
freeze first (as the functions are frozen) and started by the switch on the self-hosted Redis.

The guide's architecture has a Node.js worker on the instance itself whose health check reads
``REDIS_HOST``. Its unit's environment file gets the managed keys, the unit is restarted, and the
rollback puts the file back (see the script's header for what exactly changes and what is
refused). What a host service gets:

- ``REDIS_HOST=127.0.0.1``: the service runs on the Redis host, and Redis always listens on
  loopback there (the install binds the private IP *and* 127.0.0.1). Loopback needs no
  security-group rule, survives a change of the instance's private address, and keeps the
  worker's traffic off the network; the functions get the private IP because they cannot use it;
- ``REDIS_PORT`` and ``REDIS_PASSWORD_SECRET_ARN``: the run's, as the functions get them (the
  service reads the password from Secrets Manager with the instance's role: the stack's
  ``RedisPasswordReadPolicyArn`` output is the policy to attach; never a password in the file);
- the keys the run removes from the functions (``removeKeys``, e.g. the old auth token's ARN) are
  removed from the file too.

The record of each file lives on the host under ``/var/lib/redis-migration/runs/<run id>/services/``
(next to the install's record of the same run), so a retried switch and the restore are exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from redis_migration.host.install import valid_run_id
from redis_migration.host.scripts import script_command
from redis_migration.models import REDIS_HOST, ManagedValues, check_host_services

SERVICES_SCRIPT = "host/host_services.sh"
SERVICES_MARKER = "REDIS_SERVICES_RESULT "
# A service on the Redis host reaches it on loopback (see the module doc).
LOCAL_REDIS_HOST = "127.0.0.1"
# What a value may hold: a host, a port, an ARN. The script checks the same set.
_VALUE = re.compile(r"^[A-Za-z0-9._:/@+=,-]{0,512}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class _Result(BaseModel):
    # extra="ignore": a newer script may report more than this version of the model knows.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, alias_generator=to_camel)


KeyOutcome = Literal["set", "unchanged", "removed", "restored", "changedByOthers"]
FileOutcome = Literal["switched", "unchanged", "restored", "keysRestored", "changedByOthers"]


class UnitResult(_Result):
    unit: str
    active: str
    restarted: bool = False
    started: bool = False
    # The stop (the consistent mode's freeze) stopped it.
    stopped: bool = False


class ServiceFileResult(_Result):
    """One environment file and the units that read it."""

    env_file: str
    units: list[UnitResult]
    file_changed: bool
    outcome: FileOutcome
    keys: dict[str, KeyOutcome] = {}
    # REDIS_HOST, REDIS_PORT, REDIS_PASSWORD_SECRET_ARN before the run (None: absent).
    before: dict[str, str | None] = {}


class HostServicesResult(_Result):
    """The last line of ``host_services.sh``: ``REDIS_SERVICES_RESULT {...}``."""

    ok: bool
    action: str | None = None
    run_id: str | None = None
    changed: bool = False
    recorded: bool = False
    refused: bool = False  # nothing was changed on the host
    error: str | None = None
    message: str = ""
    files: list[ServiceFileResult] = []


def host_service_values(target: ManagedValues) -> tuple[dict[str, str], list[str]]:
    """The keys a host service gets from the run's ``target`` (the functions' values): the same,
    with REDIS_HOST on loopback; keys mapped to None are removed. Raises ValueError for a value
    that is not a host, a port or an ARN (nothing else belongs there)."""
    sets: dict[str, str] = {}
    unsets: list[str] = []
    for key, value in sorted(target.items()):
        if not _KEY.match(key):
            raise ValueError(f"{key!r} is not an environment variable name")
        if value is None:
            unsets.append(key)
        elif key == REDIS_HOST:
            sets[key] = LOCAL_REDIS_HOST
        elif _VALUE.match(value):
            sets[key] = value
        else:
            raise ValueError(f"{key}: the value is not a host, a port or an ARN (not shown)")
    return sets, unsets


def build_switch_commands(
    run_id: str,
    units: Sequence[str],
    sets: dict[str, str],
    unsets: Sequence[str] = (),
    *,
    settle_seconds: int = 3,
) -> list[str]:
    """The ``commands`` of ``AWS-RunShellScript`` that switch ``units`` for ``run_id``."""
    valid_run_id(run_id)
    names = check_host_services(list(units))
    if not names or not sets:
        raise ValueError("a switch needs at least one unit and one key to set")
    arguments = ["--action", "switch", "--run-id", run_id, "--settle-seconds", str(settle_seconds)]
    for name in names:
        arguments += ["--unit", name]
    for key, value in sets.items():
        if not _KEY.match(key) or not _VALUE.match(value):
            raise ValueError(f"{key}: not a variable name, or a value that is not a host, a port or an ARN")
        arguments += ["--set", f"{key}={value}"]
    for key in unsets:
        if not _KEY.match(key):
            raise ValueError(f"{key!r} is not an environment variable name")
        arguments += ["--unset", key]
    return script_command(SERVICES_SCRIPT, arguments)


def build_stop_commands(
    run_id: str, units: Sequence[str], unsets: Sequence[str] = (), *, settle_seconds: int = 3
) -> list[str]:
    """The ``commands`` that stop the running ``units`` for ``run_id`` (recorded first, as the
    switch records them). ``unsets``: the keys the switch will remove, so that the stop refuses
    exactly what the switch would (a Redis password in plain text that is not removed)."""
    valid_run_id(run_id)
    names = check_host_services(list(units))
    if not names:
        raise ValueError("a stop needs at least one unit")
    arguments = ["--action", "stop", "--run-id", run_id, "--settle-seconds", str(settle_seconds)]
    for name in names:
        arguments += ["--unit", name]
    for key in unsets:
        if not _KEY.match(key):
            raise ValueError(f"{key!r} is not an environment variable name")
        arguments += ["--unset", key]
    return script_command(SERVICES_SCRIPT, arguments)


def build_restore_commands(run_id: str, *, settle_seconds: int = 3) -> list[str]:
    """The ``commands`` that put back every host service ``run_id`` switched or stopped."""
    valid_run_id(run_id)
    return script_command(
        SERVICES_SCRIPT, ["--action", "restore", "--run-id", run_id, "--settle-seconds", str(settle_seconds)]
    )


def parse_host_services_result(output: str) -> HostServicesResult | None:
    """The last complete ``REDIS_SERVICES_RESULT`` line of ``output``, or None."""
    for line in reversed(output.splitlines()):
        position = line.find(SERVICES_MARKER)
        if position < 0:
            continue
        try:
            return HostServicesResult.model_validate(json.loads(line[position + len(SERVICES_MARKER) :]))
        except (ValueError, ValidationError):
            continue  # cut in the middle: look for an earlier complete line
    return None


__all__ = [
    "LOCAL_REDIS_HOST",
    "HostServicesResult",
    "ServiceFileResult",
    "UnitResult",
    "build_restore_commands",
    "build_stop_commands",
    "build_switch_commands",
    "host_service_values",
    "parse_host_services_result",
]
