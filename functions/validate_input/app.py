"""ValidateInput: check the execution input and fill in the stack's defaults."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import logger, settings, tracer
from redis_migration.steps.validate_input import validate_input


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The raw input is the boundary: it is parsed inside validate_input, which names bad fields.
    request = validate_input(event, settings())
    logger.info("input valid", extra={"step": "ValidateInput", "output": request.to_json_dict()})
    return request.to_json_dict()
