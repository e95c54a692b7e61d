"""InstallRedis: send the install script to the instance through SSM Run Command."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, settings, tracer
from redis_migration.models import InstallInput
from redis_migration.steps.install_redis import install_redis


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "InstallRedis", event, InstallInput, lambda given: install_redis(given, settings(), aws_clients())
    )
