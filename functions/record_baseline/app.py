"""RecordBaseline: before the cutover, each function's errors and throttles and ElastiCache's connections."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.bake import record_baseline_step
from redis_migration.watch.bake import BaselineInput


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "RecordBaseline", event, BaselineInput, lambda given: record_baseline_step(given, aws_clients())
    )
