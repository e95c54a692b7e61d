"""ReadHostHealth: the instance Redis shares, read for the bake (redis_migration.steps.host_health)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.steps.host_health import read_host_health
from redis_migration.watch.host_health import HostHealthInput


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "ReadHostHealth", event, HostHealthInput, lambda given: read_host_health(given, aws_clients())
    )
