"""ValidateInput: the execution input, checked and completed with the stack's defaults.

The first state. A bad input fails here, naming every bad field, before anything changes.
"""

from __future__ import annotations

from redis_migration.errors import InvalidInput
from redis_migration.models import (
    DEFAULT_CO_TENANT,
    MigrationInput,
    MigrationRequest,
    StackSettings,
    parse_model,
)


def validate_input(raw: object, settings: StackSettings) -> MigrationRequest:
    """Validate ``raw`` and fill in the defaults; raise InvalidInput naming each bad field."""
    given = parse_model(MigrationInput, raw if raw is not None else {})
    problems = stack_scoped_field_problems(given, settings)
    instance_id = given.instance_id or settings.instance_id
    if not instance_id:
        problems.append("instanceId: required (the stack has no default InstanceId)")
    endpoint = given.elasticache_endpoint or settings.elasticache_endpoint
    if not endpoint:
        problems.append("elasticacheEndpoint: required (the stack has no default ElastiCacheEndpoint)")
    functions = None
    if given.functions is not None:
        functions, bad = function_names(given.functions, settings)
        problems += bad
    if problems:
        raise InvalidInput(f"MigrationInput: {'; '.join(problems)}")
    co_tenants, co_tenants_if_present = co_tenant_units(given)
    return MigrationRequest(
        project_name=settings.project_name,
        environment=settings.environment,
        instance_id=instance_id,
        elasticache_endpoint=endpoint,
        functions=functions,
        remove_keys=sorted(set(given.remove_keys)),
        redis_port=given.redis_port or settings.redis_port,
        release=given.release,
        dry_run=given.dry_run,
        require_approval=given.require_approval,
        maxmemory=given.maxmemory,
        maxmemory_policy=given.maxmemory_policy,
        bind_all_interfaces=given.bind_all_interfaces,
        data_copy=given.data_copy,
        source_secret_arn=given.source_secret_arn,
        source_tls=given.source_tls,
        max_freeze_seconds=given.max_freeze_seconds,
        bake_minutes=given.bake_minutes,
        bake_thresholds=given.bake_thresholds,
        cutover_waves=given.cutover_waves,
        host_services=given.host_services,
        co_tenants=co_tenants,
        co_tenants_if_present=co_tenants_if_present,
    )


def co_tenant_units(given: MigrationInput) -> tuple[list[str], list[str]]:
    """The co-tenants to inspect: (named, taken when present).

    Named ones (``coTenants``, or by default the ``hostServices``, which the run restarts and must
    exist anyway) must be on the instance; the guide's telephony server is taken by default when
    it is there, so an instance without Asterisk is not refused for it.
    """
    if given.co_tenants is not None:
        return list(given.co_tenants), []
    named = list(given.host_services)
    return named, [] if DEFAULT_CO_TENANT in named else [DEFAULT_CO_TENANT]


def stack_scoped_field_problems(given: MigrationInput, settings: StackSettings) -> list[str]:
    """The fields the stack's IAM is scoped to may be repeated, never changed.

    The secret's name, the lock and every permission of the stack follow its ProjectName,
    Environment and InstanceId: a run "for staging" on the dev stack would create a second
    secret and reinstall the dev instance's Redis with it. One stack migrates one environment.
    """
    problems = []
    for field, value, stack_value in (
        ("projectName", given.project_name, settings.project_name),
        ("environment", given.environment, settings.environment),
        ("instanceId", given.instance_id, settings.instance_id),
    ):
        if value is not None and stack_value and value != stack_value:
            problems.append(
                f"{field}: {value!r} is not this stack's {stack_value!r}; one stack migrates one "
                "environment on one instance (deploy another stack for another)"
            )
    return problems


def function_names(identifiers: list[str], settings: StackSettings) -> tuple[list[str], list[str]]:
    """Bare function names from names, ARNs or partial ARNs, without duplicates; and the problems.

    The same function given by name and by ARN is one function (it was planned and switched twice).
    A qualifier (``name:alias`` or ``name:3``) is refused: the cutover changes ``$LATEST`` and then
    moves the function's aliases itself.
    """
    names: list[str] = []
    problems = []
    for index, identifier in enumerate(identifiers):
        parts = identifier.split(":")
        if identifier.startswith("arn:"):
            region, name, qualifier = parts[3], parts[6], parts[7] if len(parts) > 7 else None
            if settings.region and region != settings.region:
                problems.append(
                    f"functions.{index}: {identifier} is in region {region}, this stack in {settings.region}"
                )
                continue
        elif len(parts) >= 3 and parts[1] == "function":
            name, qualifier = parts[2], parts[3] if len(parts) > 3 else None
        else:
            name, qualifier = parts[0], parts[1] if len(parts) > 1 else None
        if qualifier is not None:
            problems.append(
                f"functions.{index}: {identifier} has a qualifier ({qualifier}); give the function, "
                "its aliases are moved with it"
            )
            continue
        names.append(name)
    return sorted(set(names)), problems
