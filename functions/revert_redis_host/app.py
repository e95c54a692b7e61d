"""RevertRedisHost (compensation): put the host back as the run found it, keeping the data."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import RevertHostInput
from redis_migration.steps.host import revert_redis_host


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "RevertRedisHost", event, RevertHostInput, lambda given: revert_redis_host(given, aws_clients())
    )
