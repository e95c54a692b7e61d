"""VerifyCutover: every switched function carries the values this run wrote."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import VerifyInput
from redis_migration.steps.cut_over_function import verify_cutover


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step("VerifyCutover", event, VerifyInput, lambda given: verify_cutover(given, aws_clients()))
