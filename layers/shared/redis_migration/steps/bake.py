"""RecordBaseline and CheckBake: the bake after the cutover (see redis_migration/watch/bake.py)."""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.watch.bake import (
    BakeBaseline,
    BakeCheck,
    BakeCheckInput,
    BaselineInput,
    check_bake,
    record_baseline,
)


def record_baseline_step(given: BaselineInput, aws: AwsClients) -> BakeBaseline:
    """Each function's Errors and Throttles and ElastiCache's connections before the cutover."""
    with aws_errors_as_transient():
        return record_baseline(given, aws)


def check_bake_step(given: BakeCheckInput, aws: AwsClients) -> BakeCheck:
    """One check of the bake: baking, passed or regressed (with the reasons and the numbers)."""
    with aws_errors_as_transient():
        return check_bake(given, aws)
