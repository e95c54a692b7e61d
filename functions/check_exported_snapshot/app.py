"""CheckExportedSnapshot: the export's end and the RDB header of its files (see
redis_migration.decommission.snapshot)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.decommission.models import ExportInput
from redis_migration.decommission.snapshot import check_exported_snapshot
from redis_migration.lambda_support import aws_clients, logger, run_step, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return run_step(
        "CheckExportedSnapshot",
        event,
        ExportInput,
        lambda given: check_exported_snapshot(given, aws_clients()),
    )
