"""EnsurePasswordSecret: create the password secret once, reuse it afterwards."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import SecretInput
from redis_migration.steps.ensure_password_secret import ensure_password_secret


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "EnsurePasswordSecret", event, SecretInput, lambda given: ensure_password_secret(given, aws_clients())
    )
