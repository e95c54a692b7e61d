"""CopyDataBack: one slice of the copy back to ElastiCache of what the switched writers wrote."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # redis-py is imported when the step first runs, not at the container's start.
    from redis_migration.steps.data_baseline import CopyBackInput, copy_data_back  # noqa: PLC0415

    return run_step(
        "CopyDataBack",
        event,
        CopyBackInput,
        lambda given: copy_data_back(given, aws_clients(), remaining_ms=context.get_remaining_time_in_millis),
    )
