"""CheckFinalSnapshot: the final snapshot's status (see redis_migration.decommission.snapshot)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.models import SnapshotInput
from redis_migration.decommission.snapshot import check_final_snapshot
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckFinalSnapshot",
        event,
        SnapshotInput,
        lambda given: check_final_snapshot(given, aws_clients()),
    )
