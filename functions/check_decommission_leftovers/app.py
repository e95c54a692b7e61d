"""CheckDecommissionLeftovers: what of ElastiCache is left (see redis_migration.decommission.leftovers)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.leftovers import check_decommission_leftovers
from redis_migration.decommission.models import LeftoversInput
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckDecommissionLeftovers",
        event,
        LeftoversInput,
        lambda given: check_decommission_leftovers(given, aws_clients()),
    )
