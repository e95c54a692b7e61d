"""RestoreHostServices (compensation): put the host services' environment files back and restart them."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.host_services import RestoreHostServicesInput, restore_host_services


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "RestoreHostServices",
        event,
        RestoreHostServicesInput,
        lambda given: restore_host_services(given, aws_clients()),
    )
