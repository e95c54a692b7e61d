"""The host's compensation: put it back as it was before a run (``host/revert_redis_host.sh``).

The install records the host's state before its first change, once per run id (the execution's
name), under ``/var/lib/redis-migration/runs/<id>/`` on the host. The revert command puts back the
previous config file (atomically), the kernel settings files, the service's enabled state, and
the service running on the old config (restarted only when the running config differs) or
stopped, keeping the data: before a restart onto a config without AOF (or a stop) it makes
dump.rdb current with a BGSAVE, and after a restart it checks the key count. A second revert
changes nothing; a run id without a record (the install never changed anything) is "nothing to
do", reported with ``recorded: false``. No secret is sent: the script talks to Redis as the
host-local admin user, whose credential never leaves the host.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from redis_migration.host.install import valid_run_id
from redis_migration.host.scripts import script_command
from redis_migration.host.state import DEFAULT_DIGEST_MAX_KEYS
from redis_migration.models import HostState

REVERT_SCRIPT = "host/revert_redis_host.sh"
REVERT_MARKER = "REDIS_REVERT_RESULT "


class RevertResult(BaseModel):
    """The last line of ``revert_redis_host.sh``: ``REDIS_REVERT_RESULT {...}``."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, alias_generator=to_camel)

    ok: bool
    changed: bool = False
    recorded: bool = False  # False: no before record for the run id; nothing was done
    run_id: str | None = None
    config_restored: bool = False
    service_action: Literal["none", "restarted", "started", "stopped"] = "none"
    keys_before: int | None = None  # before a restart, when the server was running
    keys_after: int | None = None  # after a restart
    error: str | None = None
    message: str = ""
    before: HostState | None = None  # the facts the install recorded before the run
    after: HostState | None = None  # the host's facts after the revert


def build_revert_commands(run_id: str, *, digest_max_keys: int = DEFAULT_DIGEST_MAX_KEYS) -> list[str]:
    """The ``commands`` of ``AWS-RunShellScript`` that put the host back as before ``run_id``."""
    valid_run_id(run_id)
    if not 0 <= digest_max_keys <= 999_999_999:
        raise ValueError("digest_max_keys must be 0-999999999")
    return script_command(REVERT_SCRIPT, ["--run-id", run_id, "--digest-max-keys", str(digest_max_keys)])


def parse_revert_result(output: str) -> RevertResult | None:
    """The last complete ``REDIS_REVERT_RESULT`` line of ``output``, or None."""
    for line in reversed(output.splitlines()):
        position = line.find(REVERT_MARKER)
        if position < 0:
            continue
        try:
            return RevertResult.model_validate(json.loads(line[position + len(REVERT_MARKER) :]))
        except (ValueError, ValidationError):
            continue  # cut in the middle: look for an earlier complete line
    return None


__all__ = ["RevertResult", "build_revert_commands", "parse_revert_result"]
