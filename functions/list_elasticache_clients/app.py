"""ListElastiCacheClients: CLIENT LIST on every ElastiCache node, from inside the VPC (see
redis_migration.decommission.clients)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.clients.connected import ClientCheck
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # CLIENT LIST brings redis-py: imported when the function first runs, not on its cold start's import.
    from redis_migration.decommission.clients import list_elasticache_clients  # noqa: PLC0415

    return run_step(
        "ListElastiCacheClients",
        event,
        ClientCheck,
        lambda given: list_elasticache_clients(given, aws_clients()),
    )
