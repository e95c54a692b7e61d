"""PrepareRollback: validate the record of a succeeded migration before rolling it back."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, settings, tracer
from redis_migration.models import RollbackRequest
from redis_migration.steps.prepare_rollback import prepare_rollback


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "PrepareRollback",
        event,
        RollbackRequest,
        lambda given: prepare_rollback(given, settings(), aws_clients()),
    )
