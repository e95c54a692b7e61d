"""RestoreFunction (compensation): put one batch of functions' managed keys back."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import BatchRequest
from redis_migration.steps.cut_over_function import restore_batch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step("RestoreFunction", event, BatchRequest, lambda given: restore_batch(given, aws_clients()))
