"""InspectHostBefore / InspectHostAfter and the compensation RevertRedisHost.

The host is part of "as before": a run records it before any change (read-only inspection), the
install records it again on the host under the run's id before its first change, and a run that
fails puts it back (revert_redis_host.sh: the previous config, the service as it was, the data
kept). What the workflow compares after a revert is what the run changes — the config file,
the ports Redis listens on, the service's state — and the revert itself checks that no key was
lost across its restart. Keys clients wrote meanwhile are theirs, not a difference the run made.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.errors import HostInspectionFailed, HostRevertFailed
from redis_migration.host.commands import require_ssm_online, run_host_command
from redis_migration.host.revert import build_revert_commands, parse_revert_result
from redis_migration.host.state import build_inspect_commands, compare_host, parse_inspect_result
from redis_migration.models import HostInspection, InspectHostInput, RevertHostInput, RevertHostOutput

INSPECT_WAIT_SECONDS = 60
REVERT_WAIT_SECONDS = 270  # within RevertRedisHost's 300 s: a restart may wait for an RDB save


def inspect_host(given: InspectHostInput, aws: AwsClients) -> HostInspection:
    """The host's Redis as it is now (package, config, service, ports, memory, keys); changes nothing."""
    with aws_errors_as_transient():
        require_ssm_online(given.instance_id, aws)
        invocation = run_host_command(
            given.instance_id,
            build_inspect_commands(
                given.port, co_tenants=given.co_tenants, co_tenants_if_present=given.co_tenants_if_present
            ),
            "redis-migration: inspect the host (read-only)",
            aws,
            wait_seconds=INSPECT_WAIT_SECONDS,
        )
    result = parse_inspect_result(invocation.get("StandardOutputContent", ""))
    if result is None or not result.ok or result.state is None:
        reason = f"{result.error}: {result.message}" if result else "no result line"
        raise HostInspectionFailed(
            f"inspecting {given.instance_id} ended {invocation.get('Status')}: {reason}; "
            f"stderr: {invocation.get('StandardErrorContent', '')[-300:]}"
        )
    return HostInspection(command_id=invocation["CommandId"], state=result.state)


def revert_redis_host(given: RevertHostInput, aws: AwsClients) -> RevertHostOutput:
    """Put the host back as the run found it; answer what (if anything) still differs."""
    with aws_errors_as_transient():
        invocation = run_host_command(
            given.instance_id,
            build_revert_commands(given.run_id),
            f"redis-migration: revert the host as before {given.run_id}",
            aws,
            wait_seconds=REVERT_WAIT_SECONDS,
        )
    result = parse_revert_result(invocation.get("StandardOutputContent", ""))
    if result is None or not result.ok:
        reason = f"{result.error}: {result.message}" if result else "no result line"
        raise HostRevertFailed(
            f"reverting {given.instance_id} to before {given.run_id} ended "
            f"{invocation.get('Status')}: {reason}"
        )
    differences: list[str] = []
    if given.host_before is not None and result.after is not None and result.recorded:
        differences = compare_host(given.host_before, result.after, data=False)
    if (
        result.keys_before is not None
        and result.keys_after is not None
        and result.keys_after < result.keys_before
    ):
        differences.append(
            f"keys: {result.keys_before} before the revert's restart, {result.keys_after} after"
        )
    return RevertHostOutput(
        recorded=result.recorded,
        changed=result.changed,
        service_action=result.service_action,
        keys_before=result.keys_before,
        keys_after=result.keys_after,
        host_after=result.after,
        differences=differences,
    )
