"""ScheduleAuthTokenSecretDeletion: schedules the AUTH token's secret for deletion (30-day recovery
window) (see redis_migration.decommission.deletion)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.deletion import schedule_auth_token_secret_deletion
from redis_migration.decommission.models import DeletionInput
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "ScheduleAuthTokenSecretDeletion",
        event,
        DeletionInput,
        lambda given: schedule_auth_token_secret_deletion(given, aws_clients()),
    )
