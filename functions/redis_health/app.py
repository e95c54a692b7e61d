"""RedisHealth (scheduled): read Redis's INFO from inside the VPC and publish its health metrics (EMF)."""

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, settings, tracer

# Namespace from POWERTOOLS_METRICS_NAMESPACE; Powertools' Metrics instances share one metric set.
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The health module brings redis-py (with its asyncio client, about 50 ms) and Powertools
    # parameters: imported when the function first runs, not on its cold start's import.
    from redis_migration.watch.monitoring import publish_redis_health  # noqa: PLC0415

    # The schedule's event carries nothing to parse: what to check comes from the stack settings.
    report = publish_redis_health(settings(), aws_clients(), metrics)
    if report.healthy:
        logger.info("redis healthy", extra={"endpoint": report.endpoint, "metrics": report.metrics})
    else:
        logger.warning("redis unhealthy", extra={"endpoint": report.endpoint, "reason": report.reason})
    return report.model_dump(mode="json")
