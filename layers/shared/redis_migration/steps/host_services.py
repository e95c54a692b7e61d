"""StopHostServices (the consistent mode's freeze), CutOverHostServices and the compensation
RestoreHostServices (see redis_migration/host/services.py).

Each sends ``host/host_services.sh`` through SSM Run Command and waits for it in the Lambda
(seconds: a file rewritten and a few restarts), like the host's inspection and revert.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.errors import HostServicesFailed, HostServicesRefused, InvalidInput, TransientError
from redis_migration.host.commands import run_host_command
from redis_migration.host.services import (
    HostServicesResult,
    ServiceFileResult,
    build_restore_commands,
    build_stop_commands,
    build_switch_commands,
    host_service_values,
    parse_host_services_result,
)
from redis_migration.models import MAX_HOST_SERVICES, ManagedValues, Model, check_host_services

# A rollback-later undoes every run of the stack still switched; more than this is refused.
MAX_RESTORED_RUNS = 20
# Within the functions' 180 s: a rewrite and up to 20 restarts of a few seconds each.
SERVICES_WAIT_SECONDS = 150


class HostServicesInput(Model):
    """CutOverHostServices and StopHostServices: the request's ``hostServices`` and the run's
    target (the functions'; the stop reads only the keys to remove from it)."""

    instance_id: str
    # The execution's name: the host records each file before its first change under it.
    run_id: str
    services: Annotated[list[str], Field(max_length=MAX_HOST_SERVICES)]
    target: ManagedValues

    @field_validator("services")
    @classmethod
    def _units(cls, units: list[str]) -> list[str]:
        return check_host_services(units)


class RestoreHostServicesInput(Model):
    """RestoreHostServices: every service the runs ``runIds`` switched (the host knows which),
    newest run first: a later rollback may undo several runs, and each file goes back to what
    the oldest of them found."""

    instance_id: str
    run_ids: Annotated[list[str], Field(min_length=1, max_length=MAX_RESTORED_RUNS)]


class HostServicesOutput(Model):
    command_id: str | None
    changed: bool
    recorded: bool
    files: list[ServiceFileResult]
    message: str
    # RestoreHostServices: what someone changed since the switch and was left alone, by name.
    leftovers: list[str] = []


def _run_services_script(
    instance_id: str, commands: list[str], comment: str, what: str, aws: AwsClients
) -> tuple[str, HostServicesResult]:
    """Send host_services.sh, wait for it, and answer its command id and checked result line."""
    with aws_errors_as_transient():
        invocation = run_host_command(instance_id, commands, comment, aws, wait_seconds=SERVICES_WAIT_SECONDS)
    result = parse_host_services_result(str(invocation.get("StandardOutputContent", "")))
    if result is None:
        stderr = str(invocation.get("StandardErrorContent", ""))[-300:]
        raise HostServicesFailed(
            f"{what} ended {invocation.get('Status')} without a result line; stderr: {stderr}"
        )
    if result.error == "Busy":
        raise TransientError(f"{what}: {result.message}")
    if result.refused:
        raise HostServicesRefused(f"{what}: {result.message}")
    if not result.ok:
        raise HostServicesFailed(f"{what}: {result.error}: {result.message}")
    return str(invocation["CommandId"]), result


def cut_over_host_services(given: HostServicesInput, aws: AwsClients) -> HostServicesOutput:
    """Point the units' environment files at the self-hosted Redis and restart the running ones."""
    if not given.services:
        return HostServicesOutput(
            command_id=None, changed=False, recorded=False, files=[], message="no host service"
        )
    try:
        sets, unsets = host_service_values(given.target)
    except ValueError as error:
        raise InvalidInput(f"target: {error}") from None
    command_id, result = _run_services_script(
        given.instance_id,
        build_switch_commands(given.run_id, given.services, sets, unsets),
        f"redis-migration: switch host services for {given.run_id}",
        f"switching {', '.join(given.services)} on {given.instance_id}",
        aws,
    )
    return _output(command_id, result)


def stop_host_services(given: HostServicesInput, aws: AwsClients) -> HostServicesOutput:
    """Record the units' environment files and stop the running units, so that nothing on the
    instance writes to ElastiCache while the writers are frozen (the switch starts them again on
    the self-hosted Redis; the restore, on ElastiCache). Refuses what the switch would refuse."""
    if not given.services:
        return HostServicesOutput(
            command_id=None, changed=False, recorded=False, files=[], message="no host service"
        )
    try:
        _, unsets = host_service_values(given.target)
    except ValueError as error:
        raise InvalidInput(f"target: {error}") from None
    command_id, result = _run_services_script(
        given.instance_id,
        build_stop_commands(given.run_id, given.services, unsets),
        f"redis-migration: stop host services for the freeze of {given.run_id}",
        f"stopping {', '.join(given.services)} on {given.instance_id}",
        aws,
    )
    return _output(command_id, result)


def _output(
    command_id: str, result: HostServicesResult, leftovers: list[str] | None = None
) -> HostServicesOutput:
    return HostServicesOutput(
        command_id=command_id,
        changed=result.changed,
        recorded=result.recorded,
        files=result.files,
        message=result.message,
        leftovers=leftovers or [],
    )


def restore_host_services(given: RestoreHostServicesInput, aws: AwsClients) -> HostServicesOutput:
    """Put back every environment file the runs switched and restart (or start again) their units,
    the ones the runs only stopped too."""
    outputs = [_restore_run(given.instance_id, run_id, aws) for run_id in given.run_ids]
    return HostServicesOutput(
        command_id=outputs[-1].command_id,
        changed=any(output.changed for output in outputs),
        recorded=any(output.recorded for output in outputs),
        files=[entry for output in outputs for entry in output.files],
        message="; ".join(output.message for output in outputs),
        leftovers=[leftover for output in outputs for leftover in output.leftovers],
    )


def _restore_run(instance_id: str, run_id: str, aws: AwsClients) -> HostServicesOutput:
    command_id, result = _run_services_script(
        instance_id,
        build_restore_commands(run_id),
        f"redis-migration: restore host services as before {run_id}",
        f"restoring the host services of {run_id} on {instance_id}",
        aws,
    )
    leftovers = [
        f"host {instance_id}: {entry.env_file}: {key} was changed by someone else after the switch; "
        "left as it is (check it points where the service should go)"
        for entry in result.files
        for key, outcome in entry.keys.items()
        if outcome == "changedByOthers"
    ]
    return _output(command_id, result, leftovers)
