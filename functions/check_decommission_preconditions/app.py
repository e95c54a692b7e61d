"""CheckDecommissionPreconditions: read-only checks before ElastiCache is retired, and the plan (see
redis_migration.decommission.preconditions)."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.models import DecommissionRequest, load_decommission_settings
from redis_migration.decommission.preconditions import check_decommission_preconditions
from redis_migration.lambda_support import aws_clients, logger, run_step, settings, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckDecommissionPreconditions",
        event,
        DecommissionRequest,
        lambda given: check_decommission_preconditions(
            given, settings(), load_decommission_settings(os.environ), aws_clients()
        ),
    )
