"""CheckReplicationGroupDeleted: whether the replication group is gone (see
redis_migration.decommission.deletion)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.deletion import check_replication_group_deleted
from redis_migration.decommission.models import DeletionInput
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckReplicationGroupDeleted",
        event,
        DeletionInput,
        lambda given: check_replication_group_deleted(given, aws_clients()),
    )
