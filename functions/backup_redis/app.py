"""BackupRedis (scheduled): snapshot Redis's persistence files on the host to S3 and publish the outcome."""

import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from redis_migration.lambda_support import aws_clients, logger, settings, tracer
from redis_migration.watch.backup import backup_settings, run_scheduled_backup, s3_client

metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    # The schedule's event carries nothing to parse: what to back up comes from the stack settings.
    report = run_scheduled_backup(
        settings(),
        backup_settings(os.environ),
        aws_clients(),
        s3_client(os.environ.get("AWS_REGION")),
        metrics,
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    if report.ok:
        logger.info("backup stored", extra=report.model_dump(mode="json"))
    else:
        logger.error("backup failed", extra=report.model_dump(mode="json"))
    return report.model_dump(mode="json")
