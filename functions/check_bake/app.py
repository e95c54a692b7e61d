"""CheckBake: one minute of the bake; baking, passed, or regressed with the reasons and the numbers."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.bake import check_bake_step
from redis_migration.watch.bake import BakeCheckInput


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step("CheckBake", event, BakeCheckInput, lambda given: check_bake_step(given, aws_clients()))
