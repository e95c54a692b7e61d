"""StopHostServices: stop the systemd services on the instance that use Redis, for the consistent freeze."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.host_services import HostServicesInput, stop_host_services


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "StopHostServices",
        event,
        HostServicesInput,
        lambda given: stop_host_services(given, aws_clients()),
    )
