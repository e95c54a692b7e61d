"""DiscardFinalSnapshot: compensation: removes this run's snapshot while the replication group is intact
(see redis_migration.decommission.snapshot)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.models import DiscardInput
from redis_migration.decommission.snapshot import discard_final_snapshot
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "DiscardFinalSnapshot",
        event,
        DiscardInput,
        lambda given: discard_final_snapshot(given, aws_clients()),
    )
