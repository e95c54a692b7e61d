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
from redis_migration.data.copy import CopyMode, CopyProgress, CopySettings, DumpVersionUnsupported, copy_data
from redis_migration.data.link import Credentials, RedisEndpoint, RedisLink, read_credentials
from redis_migration.data.preflight import ServerDataFacts, check_dump_version, running_server_facts
from redis_migration.models import Model
from redis_migration.steps.data_steps import time_budget


class CopyDataInput(Model):
    source: RedisEndpoint
    target: RedisEndpoint
    mode: CopyMode = "full"
    progress: CopyProgress | None = None
    time_budget_seconds: Annotated[int, Field(ge=5, le=840)] = 600
    settings: CopySettings = CopySettings()
    # The source's RDB version as CheckData judged it (None: not checked again here).
    source_rdb_version: Annotated[int | None, Field(ge=1, le=99)] = None
    source_release: Annotated[str | None, Field(max_length=64)] = None


def copy_data_step(
    given: CopyDataInput,
    aws: AwsClients,
    *,
    remaining_ms: Callable[[], int] | None = None,
    memory_mb: int | None = None,
) -> CopyProgress:
    """Copy until done or the time budget; answer the progress for the next invocation.
    ``memory_mb``: the function's memory (a key it could not hold is refused by name). Before the
    first batch, a target that cannot read the source's RDB version is refused (DumpVersionUnsupported):
    CheckData ran before the target was installed and could not tell."""
    target_credentials = read_credentials(given.target, aws)
    if given.progress is None and given.source_rdb_version is not None:
        refuse_an_older_target(
            given.source_rdb_version, given.source_release, given.target, target_credentials
        )
    return copy_data(
        given.source,
        read_credentials(given.source, aws),
        given.target,
        target_credentials,
        mode=given.mode,
        progress=given.progress,
        time_budget_s=time_budget(given.time_budget_seconds, remaining_ms),
        settings=given.settings,
        memory_mb=memory_mb,
    )


def refuse_an_older_target(
    source_rdb_version: int, source_release: str | None, target: RedisEndpoint, credentials: Credentials
) -> None:
    """Raise DumpVersionUnsupported when the running target reads only older DUMP payloads."""
    with RedisLink(target, credentials) as link:
        facts = running_server_facts(link)
    server, _, version = (source_release or "").partition(" ")
    source = ServerDataFacts(server=server or "redis", version=version, rdb_version=source_rdb_version)
    finding = check_dump_version(source, facts)
    if finding is not None:
        raise DumpVersionUnsupported(finding.message)
