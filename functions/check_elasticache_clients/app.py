"""CheckElastiCacheClients: ElastiCache's clients compared with the plan; in consistent mode a writer
the run would neither switch nor freeze is a refusal (see redis_migration.steps.check_elasticache_clients)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, settings, tracer
from redis_migration.steps.check_elasticache_clients import ElastiCacheClientsInput, check_elasticache_clients


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckElastiCacheClients",
        event,
        ElastiCacheClientsInput,
        lambda given: check_elasticache_clients(given, aws_clients(), settings().stack_name),
    )
