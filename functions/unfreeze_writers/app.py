"""UnfreezeWriters / RestoreWriterConcurrency: one batch's reserved concurrency back as recorded."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import BatchRequest
from redis_migration.steps.freeze import unfreeze_batch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "UnfreezeWriters", event, BatchRequest, lambda given: unfreeze_batch(given, aws_clients())
    )
