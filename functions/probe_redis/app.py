"""ProbeRedis: check the new Redis from inside the VPC."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import logger, run_step, tracer
from redis_migration.models import ProbeInput


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The probe's module brings redis-py (with its asyncio client, about 50 ms) and Powertools
    # parameters: imported when the function first runs, not on its cold start's import.
    from redis_migration.steps.probe_redis import probe  # noqa: PLC0415

    return run_step("ProbeRedis", event, ProbeInput, probe)
