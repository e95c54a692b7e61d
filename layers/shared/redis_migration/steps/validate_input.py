"""ValidateInput: the execution input, checked and completed with the stack's defaults.

The first state. A bad input fails here, naming every bad field, before anything changes.
"""

from __future__ import annotations

from redis_migration.errors import InvalidInput
from redis_migration.models import MigrationInput, MigrationRequest, StackSettings, parse_model


def validate_input(raw: object, settings: StackSettings) -> MigrationRequest:
    """Validate ``raw`` and fill in the defaults; raise InvalidInput naming each bad field."""
    given = parse_model(MigrationInput, raw if raw is not None else {})
    missing = []
    instance_id = given.instance_id or settings.instance_id
    if not instance_id:
        missing.append("instanceId: required (the stack has no default InstanceId)")
    endpoint = given.elasticache_endpoint or settings.elasticache_endpoint
    if not endpoint:
        missing.append("elasticacheEndpoint: required (the stack has no default ElastiCacheEndpoint)")
    if missing:
        raise InvalidInput(f"MigrationInput: {'; '.join(missing)}")
    return MigrationRequest(
        project_name=given.project_name or settings.project_name,
        environment=given.environment or settings.environment,
        instance_id=instance_id,
        elasticache_endpoint=endpoint,
        functions=sorted(set(given.functions)) if given.functions is not None else None,
        remove_keys=sorted(set(given.remove_keys)),
        redis_port=given.redis_port or settings.redis_port,
        release=given.release,
        dry_run=given.dry_run,
        require_approval=given.require_approval,
        maxmemory=given.maxmemory,
        maxmemory_policy=given.maxmemory_policy,
        bind_all_interfaces=given.bind_all_interfaces,
    )
