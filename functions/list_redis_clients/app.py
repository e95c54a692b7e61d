"""ListElastiCacheClients: who is connected to ElastiCache, and who the run will not switch."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # redis-py is imported when the step first runs.
    from redis_migration.steps.list_redis_clients import (  # noqa: PLC0415
        ListClientsInput,
        list_redis_clients_step,
    )

    return run_step(
        "ListElastiCacheClients",
        event,
        ListClientsInput,
        lambda given: list_redis_clients_step(given, aws_clients()),
    )
