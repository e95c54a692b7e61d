"""CopyData / CopyChangedData: one resumable slice of the copy from ElastiCache (the ASL loops)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # redis-py and the copier are imported when the step first runs, not at the container's start.
    from redis_migration.steps.copy_data import CopyDataInput, copy_data_step  # noqa: PLC0415

    return run_step(
        "CopyData",
        event,
        CopyDataInput,
        lambda given: copy_data_step(
            given,
            aws_clients(),
            remaining_ms=context.get_remaining_time_in_millis,
            memory_mb=int(context.memory_limit_in_mb),
        ),
    )
