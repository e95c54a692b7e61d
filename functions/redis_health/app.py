"""RedisHealth (scheduled): read Redis's INFO from inside the VPC and publish its health metrics (EMF)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, settings, tracer
from redis_migration.monitoring import metrics, publish_redis_health


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The schedule's event carries nothing to parse: what to check comes from the stack settings.
    report = publish_redis_health(settings(), aws_clients())
    if report.healthy:
        logger.info("redis healthy", extra={"endpoint": report.endpoint, "metrics": report.metrics})
    else:
        logger.warning("redis unhealthy", extra={"endpoint": report.endpoint, "reason": report.reason})
    return report.model_dump(mode="json")
