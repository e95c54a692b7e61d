"""CutOverFunction: switch one batch of functions' managed keys to the new Redis."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import BatchRequest
from redis_migration.steps.cut_over_function import cut_over_batch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CutOverFunction", event, BatchRequest, lambda given: cut_over_batch(given, aws_clients())
    )
