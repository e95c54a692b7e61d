"""InspectHostBefore / InspectHostAfter: the host's Redis as it is, read-only (redis_migration.steps.host)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import InspectHostInput
from redis_migration.steps.host import inspect_host


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step("InspectHost", event, InspectHostInput, lambda given: inspect_host(given, aws_clients()))
