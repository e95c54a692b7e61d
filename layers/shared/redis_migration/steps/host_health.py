"""ReadHostHealth: the instance Redis shares, read for the bake (redis_migration/watch/host_health.py).

Read-only, through SSM Run Command, waited for inside the Lambda (the script reads ``/proc`` and
``systemctl show``: well under a second on the host). A command that fails or answers no result
line is HostInspectionFailed; the workflow catches it and CheckBake counts an unread instance.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.errors import HostInspectionFailed
from redis_migration.host.commands import run_host_command
from redis_migration.watch.host_health import (
    HostHealthInput,
    HostHealthReading,
    build_host_health_commands,
    parse_host_health,
)

READ_WAIT_SECONDS = 30


def read_host_health(given: HostHealthInput, aws: AwsClients) -> HostHealthReading:
    """The instance's memory, swap, load, pressure and co-tenants now; changes nothing."""
    with aws_errors_as_transient():
        invocation = run_host_command(
            given.instance_id,
            build_host_health_commands(given.co_tenants),
            "redis-migration: read the instance for the bake (read-only)",
            aws,
            wait_seconds=READ_WAIT_SECONDS,
        )
    reading = parse_host_health(str(invocation.get("StandardOutputContent", "")))
    if reading is None or not reading.ok:
        reason = f"{reading.error}: {reading.message}" if reading else "no result line"
        raise HostInspectionFailed(
            f"reading {given.instance_id} ended {invocation.get('Status')}: {reason}; "
            f"stderr: {str(invocation.get('StandardErrorContent', ''))[-300:]}"
        )
    return reading
