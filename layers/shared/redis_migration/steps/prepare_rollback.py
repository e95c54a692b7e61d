"""PrepareRollback: start the compensation of a migration that succeeded earlier.

The guide keeps the old ElastiCache for a 24-48 h soak; if the soak goes badly, the operator
starts an execution with ``{"rollbackOf": <the succeeded execution's output>}``. The record
is validated here, and the same one-migration-per-environment rule applies.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.models import PreconditionsInput, RollbackPlan, RollbackRequest, StackSettings
from redis_migration.steps.check_preconditions import refuse_concurrent_migration


def prepare_rollback(given: RollbackRequest, settings: StackSettings, aws: AwsClients) -> RollbackPlan:
    """Check the record and that no other execution works on its environment."""
    record = given.rollback_of
    with aws_errors_as_transient():
        refuse_concurrent_migration(
            PreconditionsInput(
                request=record.plan.request,
                state_machine_arn=given.state_machine_arn,
                execution_arn=given.execution_arn,
            ),
            settings,
            aws,
        )
    return RollbackPlan(plan=record.plan, target=record.target, ingress=record.ingress)
