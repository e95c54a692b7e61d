"""VerifyWriterConcurrency: every frozen function's reserved concurrency as Lambda reports it now."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.freeze import ThawCheckInput, verify_writers_thawed


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "VerifyWriterConcurrency",
        event,
        ThawCheckInput,
        lambda given: verify_writers_thawed(given, aws_clients()),
    )
