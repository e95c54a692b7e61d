"""DeleteCacheParameterGroup: deletes the replication group's custom parameter group (see
redis_migration.decommission.deletion)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.deletion import delete_cache_parameter_group
from redis_migration.decommission.models import DeletionInput
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "DeleteCacheParameterGroup",
        event,
        DeletionInput,
        lambda given: delete_cache_parameter_group(given, aws_clients()),
    )
