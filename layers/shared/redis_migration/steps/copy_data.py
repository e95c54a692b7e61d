"""CopyData (and CopyDataBack): one invocation of a copy, resumable; the ASL loops until ``done``.

Input: the source and target endpoints (secrets by ARN), the mode, the previous invocation's
progress (absent the first time) and a time budget. Output: the new :class:`CopyProgress`.
The reverse copy of a rollback is the same step with the endpoints swapped, mode ``changes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from redis_migration.aws import AwsClients
from redis_migration.data.copy import CopyMode, CopyProgress, CopySettings, copy_data
from redis_migration.data.link import RedisEndpoint, read_credentials
from redis_migration.models import Model
from redis_migration.steps.data_steps import time_budget


class CopyDataInput(Model):
    source: RedisEndpoint
    target: RedisEndpoint
    mode: CopyMode = "full"
    progress: CopyProgress | None = None
    time_budget_seconds: Annotated[int, Field(ge=5, le=840)] = 600
    settings: CopySettings = CopySettings()


def copy_data_step(
    given: CopyDataInput,
    aws: AwsClients,
    *,
    remaining_ms: Callable[[], int] | None = None,
    memory_mb: int | None = None,
) -> CopyProgress:
    """Copy until done or the time budget; answer the progress for the next invocation.
    ``memory_mb``: the function's memory (a key it could not hold is refused by name)."""
    return copy_data(
        given.source,
        read_credentials(given.source, aws),
        given.target,
        read_credentials(given.target, aws),
        mode=given.mode,
        progress=given.progress,
        time_budget_s=time_budget(given.time_budget_seconds, remaining_ms),
        settings=given.settings,
        memory_mb=memory_mb,
    )
