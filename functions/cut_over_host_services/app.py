"""CutOverHostServices: point systemd services on the instance at the self-hosted Redis and restart them."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.host_services import HostServicesInput, cut_over_host_services


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CutOverHostServices",
        event,
        HostServicesInput,
        lambda given: cut_over_host_services(given, aws_clients()),
    )
