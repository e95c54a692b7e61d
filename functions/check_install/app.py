"""CheckInstall: follow the install command until it finishes."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, settings, tracer
from redis_migration.models import InstallCommand
from redis_migration.steps.install_redis import check_install


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckInstall", event, InstallCommand, lambda given: check_install(given, settings(), aws_clients())
    )
