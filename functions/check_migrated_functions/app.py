"""CheckMigratedFunctions (scheduled): every migrated function still points to the self-hosted Redis."""

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, settings, tracer

# Namespace from POWERTOOLS_METRICS_NAMESPACE, read when the handler is loaded.
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # migrated_functions imports redis_migration.watch.monitoring (for one constant), which brings
    # redis-py and Powertools parameters: imported when the function first runs, not at import.
    from redis_migration.clients.migrated import NAMED_IN_LOG, check_migrated_functions  # noqa: PLC0415

    # The schedule's event carries nothing: what to check comes from the stack's own records.
    report = check_migrated_functions(settings(), aws_clients(), metrics)
    if report.reverted:
        logger.warning(
            "migrated functions no longer point to the self-hosted Redis",
            extra={"count": len(report.reverted), "functions": report.reverted[:NAMED_IN_LOG]},
        )
    else:
        logger.info(
            "every migrated function points to the self-hosted Redis", extra={"checked": report.checked}
        )
    return report.model_dump(mode="json")
