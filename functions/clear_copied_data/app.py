"""ClearCopiedData (compensation): empty the self-hosted Redis a failed run copied into."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # redis-py is imported when the step first runs.
    from redis_migration.steps.copied_data import ClearCopiedDataInput, clear_copied_data  # noqa: PLC0415

    return run_step(
        "ClearCopiedData", event, ClearCopiedDataInput, lambda given: clear_copied_data(given, aws_clients())
    )
