"""RecordDataBaseline, CopyDataBack and CatchUpData: the state of every key at the cutover, the copy
back that carries only what the switched writers wrote since, and a warm migration's catch-up
(see :mod:`redis_migration.data.baseline` and :mod:`redis_migration.data.copy_back`). Each runs
in slices; the ASL loops until ``done``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import Field

from redis_migration.aws import AwsClients
from redis_migration.data.baseline import BaselineProgress, record_baseline
from redis_migration.data.copy_back import CopyBackProgress, copy_back
from redis_migration.data.link import RedisEndpoint, RedisLink, read_credentials
from redis_migration.models import BaselineRef, Model, RecordLocation
from redis_migration.steps.data_steps import time_budget


class RecordBaselineInput(Model):
    # The self-hosted Redis, read while the writers are frozen and both sides are verified equal.
    target: RedisEndpoint
    record: RecordLocation
    progress: BaselineProgress | None = None
    time_budget_seconds: Annotated[int, Field(ge=5, le=840)] = 600


class CopyBackInput(Model):
    # Where the writes to carry were made, and where they go: the self-hosted Redis and ElastiCache
    # for a rollback's copy back; the other way round for a warm migration's catch-up.
    source: RedisEndpoint
    target: RedisEndpoint
    direction: Literal["copy-back", "catch-up"] = "copy-back"
    baseline: BaselineRef
    # Where this execution writes what it found (the conflicts, by name).
    record: RecordLocation
    progress: CopyBackProgress | None = None
    time_budget_seconds: Annotated[int, Field(ge=5, le=840)] = 600


def record_data_baseline(
    given: RecordBaselineInput, aws: AwsClients, *, remaining_ms: Callable[[], int] | None = None
) -> BaselineProgress:
    """One slice of the baseline; answer the progress for the next."""
    credentials = read_credentials(given.target, aws)
    return record_baseline(
        lambda: RedisLink(given.target, credentials).connect(),
        given.record,
        given.progress,
        time_budget(given.time_budget_seconds, remaining_ms),
        aws,
    )


def copy_data_back(
    given: CopyBackInput, aws: AwsClients, *, remaining_ms: Callable[[], int] | None = None
) -> CopyBackProgress:
    """One slice of the copy back; answer the progress for the next."""
    return copy_back(
        given.source,
        read_credentials(given.source, aws),
        given.target,
        read_credentials(given.target, aws),
        baseline_ref=given.baseline,
        record_name=given.direction,
        record=given.record,
        progress=given.progress,
        time_budget_s=time_budget(given.time_budget_seconds, remaining_ms),
        aws=aws,
    )
