"""VerifyData: one resumable slice of the key-by-key comparison of the copy (the ASL loops)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # redis-py and the comparison are imported when the step first runs.
    from redis_migration.steps.verify_data import VerifyDataInput, verify_data_step  # noqa: PLC0415

    return run_step(
        "VerifyData",
        event,
        VerifyDataInput,
        lambda given: verify_data_step(
            given, aws_clients(), remaining_ms=context.get_remaining_time_in_millis
        ),
    )
