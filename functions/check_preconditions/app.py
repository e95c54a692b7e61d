"""CheckPreconditions: read-only checks and the plan (see redis_migration.steps.check_preconditions)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, settings, tracer
from redis_migration.models import PreconditionsInput
from redis_migration.steps.check_preconditions import check_preconditions


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckPreconditions",
        event,
        PreconditionsInput,
        lambda given: check_preconditions(given, settings(), aws_clients()),
    )
