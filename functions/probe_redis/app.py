"""ProbeRedis: check the new Redis from inside the VPC."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import logger, run_step, tracer
from redis_migration.models import ProbeInput
from redis_migration.steps.probe_redis import probe


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step("ProbeRedis", event, ProbeInput, probe)
