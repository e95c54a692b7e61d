"""AllowRedisIngress: open the Redis port to the client functions' security groups."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import IngressPlan
from redis_migration.steps.redis_ingress import allow_redis_ingress


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "AllowRedisIngress", event, IngressPlan, lambda given: allow_redis_ingress(given, aws_clients())
    )
