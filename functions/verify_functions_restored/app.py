"""VerifyFunctionsRestored (compensation): every function of the plan read back after the restore."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer
from redis_migration.models import RestoreCheckInput
from redis_migration.steps.cut_over_function import verify_functions_restored


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "VerifyFunctionsRestored",
        event,
        RestoreCheckInput,
        lambda given: verify_functions_restored(given, aws_clients()),
    )
