"""CheckData: what happens to ElastiCache's data (none, warm, consistent), before anything changes."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # redis-py is imported when the step first runs, not at the container's start.
    from redis_migration.steps.data_plan import CheckDataRequest, check_data  # noqa: PLC0415

    return run_step("CheckData", event, CheckDataRequest, lambda given: check_data(given, aws_clients()))
