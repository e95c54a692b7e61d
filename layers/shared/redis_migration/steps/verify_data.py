"""VerifyData: one invocation of a verification, resumable; the ASL loops until ``done``.

When the verification is done and a key is missing or different, the step raises DataMismatch
(unless ``failOnMismatch`` is false: the ``warm`` mode reports how many keys changed after being
copied without failing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from redis_migration.aws import AwsClients
from redis_migration.data.link import RedisEndpoint, read_credentials
from redis_migration.data.verify import VerifyProgress, VerifySettings, raise_if_mismatched, verify_data
from redis_migration.models import Model
from redis_migration.steps.data_steps import time_budget


class VerifyDataInput(Model):
    source: RedisEndpoint
    target: RedisEndpoint
    progress: VerifyProgress | None = None
    time_budget_seconds: Annotated[int, Field(ge=5, le=840)] = 600
    settings: VerifySettings = VerifySettings()
    fail_on_mismatch: bool = True


def verify_data_step(
    given: VerifyDataInput, aws: AwsClients, *, remaining_ms: Callable[[], int] | None = None
) -> VerifyProgress:
    """Verify until done or the time budget; raise DataMismatch when done with differences."""
    progress = verify_data(
        given.source,
        read_credentials(given.source, aws),
        given.target,
        read_credentials(given.target, aws),
        progress=given.progress,
        time_budget_s=time_budget(given.time_budget_seconds, remaining_ms),
        settings=given.settings,
    )
    if progress.done and given.fail_on_mismatch:
        raise_if_mismatched(progress)
    return progress
