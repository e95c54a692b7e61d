"""The host's Redis as it is: the read-only inspect command, its result, and "exactly as before".

``host/inspect_redis.sh`` (sent with ``host/common.sh``, ``host/redis_facts.sh`` and
``host/machine_facts.sh``) reports the platform, package, config file, service, listening ports,
who holds a requested port, memory, the limits of Redis's unit, and, when Redis answers on
loopback, its memory, persistence, key counts and the canonical data digest
(:mod:`redis_migration.data.digest`); and the instance as a whole (memory, swap, CPUs, load, PSI)
with each co-tenant service (for the budget, host/budget.py, and the bake). It changes nothing
and carries no secret: the admin credential, when the install created it, stays in its
root-only file on the host.

:func:`compare_host` says which differences matter for "the host is exactly as before".
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from redis_migration.host.scripts import script_command
from redis_migration.models import HostFactsModel, HostState

INSPECT_SCRIPT = "host/inspect_redis.sh"
# As the scripts check it (machine_facts.sh, CO_TENANT_UNIT_RE).
_SERVICE_UNIT = re.compile(r"^[A-Za-z0-9:_.@-]{1,248}\.service$")
INSPECT_MARKER = "REDIS_HOST_STATE "
DEFAULT_DIGEST_MAX_KEYS = 100_000


class InspectResult(HostFactsModel):
    """The last line of ``inspect_redis.sh``: ``REDIS_HOST_STATE {...}``."""

    ok: bool
    error: str | None = None
    message: str = ""
    state: HostState | None = None


def build_inspect_commands(
    port: int = 6379,
    *,
    digest_max_keys: int = DEFAULT_DIGEST_MAX_KEYS,
    co_tenants: list[str] | None = None,
    co_tenants_if_present: list[str] | None = None,
) -> list[str]:
    """The ``commands`` of ``AWS-RunShellScript`` that inspect the host (read-only).

    ``port``: the port the run wants Redis on (reported as free, ours, or held by another
    process). ``digest_max_keys``: the data digest is computed up to this many keys (0: never).
    ``co_tenants``: service units reported whatever their state (absent: ``loadState``
    ``not-found``); ``co_tenants_if_present``: reported only when the host has them.
    """
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    if not 0 <= digest_max_keys <= 999_999_999:
        raise ValueError("digest_max_keys must be 0-999999999")
    arguments = ["--port", str(port), "--digest-max-keys", str(digest_max_keys)]
    for flag, units in (("--co-tenant", co_tenants), ("--co-tenant-if-present", co_tenants_if_present)):
        for unit in units or []:
            arguments += [flag, valid_service_unit(unit)]
    return script_command(INSPECT_SCRIPT, arguments)


def valid_service_unit(unit: str) -> str:
    """``unit`` when it is a service unit name the host scripts take, else ValueError."""
    if not _SERVICE_UNIT.fullmatch(unit):
        raise ValueError(f"{unit!r} is not a systemd .service unit name")
    return unit


def parse_inspect_result(output: str) -> InspectResult | None:
    """The last complete ``REDIS_HOST_STATE`` line of ``output`` (SSM may cut its start), or None."""
    for line in reversed(output.splitlines()):
        position = line.find(INSPECT_MARKER)
        if position < 0:
            continue
        try:
            return InspectResult.model_validate(json.loads(line[position + len(INSPECT_MARKER) :]))
        except (ValueError, ValidationError):
            continue  # cut in the middle: look for an earlier complete line
    return None


def parse_host_state(output: str) -> HostState | None:
    """The host state in ``output`` of the inspect command, or None when there is none."""
    result = parse_inspect_result(output)
    return result.state if result is not None and result.ok else None


def _dbsize(state: HostState) -> int | None:
    return state.redis.dbsize if state.redis is not None else None


def _digest(state: HostState) -> str | None:
    return state.redis.digest if state.redis is not None else None


def compare_host(before: HostState, after: HostState, *, data: bool = True) -> list[str]:
    """Every difference between two states that matters for "the host is exactly as before".

    Compared: the config file's SHA-256 (or its absence), the limits drop-in of Redis's unit (its
    SHA-256 or absence, and the limits systemd reports for the unit), the ports the server listens
    on, the service's active and enabled states (a unit that does not exist counts as inactive and
    disabled), DBSIZE (every database) and the data digest (when both
    states have one; with the same digest the data is the same, whatever DBSIZE says about
    keys whose TTL ran out between the two). Not compared: the server's pid. A compensation
    that restarts Redis to put its previous config back leaves the host as it was, with another
    pid: :func:`restarted` reports that, as a fact, not as a difference.

    ``data=False`` leaves the data out: the workflow's own check after a revert, where clients of
    an earlier migration may have written in the meantime (the revert itself guards the data: it
    compares the key count across its restart).
    """
    differences = []

    def differ(name: str, old: object, new: object) -> None:
        if old != new:
            differences.append(f"{name}: {_show(old)} before, {_show(new)} after")

    differ("config sha256", before.config.sha256, after.config.sha256)
    differ("limits drop-in sha256", before.limits.drop_in_sha256, after.limits.drop_in_sha256)
    for name in ("memory_high", "memory_max", "cpu_weight", "io_weight", "oom_score_adjust"):
        differ(f"unit {name.replace('_', ' ')}", getattr(before.limits, name), getattr(after.limits, name))
    differ("listening ports", sorted(before.service.listen_ports), sorted(after.service.listen_ports))
    differ("service active", _active(before.service.active), _active(after.service.active))
    differ("service enabled", _enabled(before.service.enabled), _enabled(after.service.enabled))
    if not data:
        return differences
    old_digest, new_digest = _digest(before), _digest(after)
    if old_digest is not None and new_digest is not None:
        differ("data digest", old_digest, new_digest)
    if old_digest is None or new_digest is None or old_digest != new_digest:
        differ("dbsize", _dbsize(before), _dbsize(after))
    return differences


def _active(state: str | None) -> str:
    # A unit that does not exist (yet) is not running: the same as inactive for "as before".
    return "inactive" if state in (None, "", "unknown") else state


def _enabled(state: str | None) -> str:
    # No unit file is as good as disabled: nothing starts it at boot.
    return "disabled" if state in (None, "", "not-found") else state


def restarted(before: HostState, after: HostState) -> bool:
    """Whether the server process changed (a restart, or a start/stop) between the two states."""
    return before.service.main_pid != after.service.main_pid


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


__all__ = [
    "DEFAULT_DIGEST_MAX_KEYS",
    "InspectResult",
    "build_inspect_commands",
    "compare_host",
    "parse_host_state",
    "parse_inspect_result",
    "restarted",
    "valid_service_unit",
]
