"""CheckData: decide what happens to ElastiCache's data, before anything changes.

Read-only. It runs after CheckPreconditions, in the VPC (it reads ElastiCache), and answers the
mode the run will use:

- ``none``: start empty (the guide's way) — asked for, or ElastiCache holds no key, or every
  function already uses the self-hosted Redis (the release rule's usual re-run: nothing is copied,
  nothing is frozen);
- ``warm``: copy while the clients keep writing (a report says how many keys changed after);
- ``consistent``: copy, freeze the writers, copy what changed, verify, cut over, unfreeze.

Every data rule of :mod:`redis_migration.data.preflight` applies (a newer RDB version than the
target reads, data that will not fit the target's maxmemory, ...). A copy never lands on a
self-hosted Redis that already holds keys: it would overwrite what its clients wrote.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from redis.exceptions import RedisError

from redis_migration.aws import AwsClients
from redis_migration.clients.freeze_preflight import freeze_refusals
from redis_migration.data.copy import keyspace
from redis_migration.data.freeze_budget import FreezeEstimate, estimate_freeze
from redis_migration.data.link import RedisLink, read_credentials
from redis_migration.errors import MigrationError, PreconditionFailed
from redis_migration.lambda_support import logger
from redis_migration.models import DataPlan, Model
from redis_migration.steps.check_data import CheckDataInput, PlannedTarget, check_data_step

DataMode = Literal["none", "warm", "consistent"]


class CheckDataRequest(Model):
    data: DataPlan
    planned_target: PlannedTarget
    # Keys the self-hosted Redis holds before the run (InspectHostBefore; None: none running).
    target_keys: int | None = None
    # The stack's CutoverConcurrency: how many functions are switched at a time during a freeze.
    cutover_concurrency: Annotated[int, Field(ge=1, le=1000)] = 10
    # The copy function's memory (the stack's MaxDataFunctionMemory): the largest key it can hold.
    copy_function_memory_mb: Annotated[int | None, Field(ge=128, le=10_240)] = None


class DataDecision(Model):
    mode: DataMode
    reason: str
    source_keys: int | None = None
    warnings: list[str] = []
    # consistent: how long the writers will be frozen, estimated before anything changes.
    freeze: FreezeEstimate | None = None
    # The RDB version of the source's payloads as the rules judged it (ElastiCache's described
    # release, or the DUMP's): the copy checks the running target against it before it starts.
    source_rdb_version: int | None = None
    # The source's engine and version as the rules named it (ElastiCache's, e.g. "valkey 8.0").
    source_release: str | None = None


def check_data(given: CheckDataRequest, aws: AwsClients) -> DataDecision:
    """The data mode of this run; raise DataPreflightRefused / PreconditionFailed to refuse it."""
    data = given.data
    if data.functions_to_switch == 0:
        return DataDecision(
            mode="none", reason="every function already uses the self-hosted Redis: nothing to copy or freeze"
        )
    if data.requested == "none":
        # Nothing is carried; how much ElastiCache holds is said, so the run names what stays there.
        return DataDecision(
            mode="none",
            reason="dataCopy: none (start empty, as the guide does)",
            source_keys=source_key_count(data, aws),
        )
    verdict = check_data_step(
        CheckDataInput(
            source=data.source,
            planned_target=given.planned_target,
            copy_back=data.requested != "warm",
            source_group=data.source_group,
            copy_function_memory_mb=given.copy_function_memory_mb,
        ),
        aws,
    )
    source_keys = sum(verdict.source.keys_by_db.values())
    warnings = [f"{finding.code}: {finding.message}" for finding in verdict.warnings]
    if data.requested is None and source_keys == 0:
        return DataDecision(
            mode="none", reason="ElastiCache holds no key: nothing to copy", source_keys=0, warnings=warnings
        )
    rdb_version = verdict.source.rdb_version
    release = f"{verdict.source.server} {verdict.source.version}".strip()
    mode: DataMode = data.requested or "consistent"
    if mode == "consistent" and data.waves > 1:
        raise PreconditionFailed(
            f"cutoverWaves: {data.waves} canary waves with dataCopy consistent: while the first waves "
            "write to the self-hosted Redis the others would write to ElastiCache, which the consistent "
            'copy exists to prevent. Give "dataCopy": "warm" (writes of the later waves during the bake '
            "are not carried), or leave cutoverWaves out"
        )
    # Functions left out of a consistent run are refused by CheckElastiCacheClientsBefore, next,
    # in one list with every connected writer the run would neither switch nor freeze.
    if given.target_keys:
        raise PreconditionFailed(
            f"dataCopy: the self-hosted Redis already holds {given.target_keys} keys; copying ElastiCache's "
            f"{source_keys} keys over them would overwrite what its clients wrote, and starting without a "
            'copy ("dataCopy": "none") would serve those keys as they are, perhaps stale. Carry what only '
            "it holds to ElastiCache (a rollback's list of what is left to do names it), empty it, and run "
            "again"
        )
    freeze = None
    if mode == "consistent":
        freeze = estimate_freeze(
            longest_timeout=data.max_function_timeout,
            slowest_writer=data.slowest_writer,
            source_keys=source_keys,
            functions=data.functions_to_switch,
            cutover_concurrency=given.cutover_concurrency,
            max_freeze_seconds=data.max_freeze_seconds,
        )
        if not freeze.fits:
            raise PreconditionFailed(freeze.refusal())
        # What AWS does to a frozen writer: provisioned concurrency forbids the freeze, a short
        # maximum event age drops the asynchronous events it holds back.
        refusals, notes = freeze_refusals(data.freeze_facts, freeze.total)
        if refusals:
            raise PreconditionFailed("; ".join(refusals))
        warnings += notes
    reason = (
        f"dataCopy: {mode}"
        if data.requested
        else f"ElastiCache holds {source_keys} keys: copied consistently (the default)"
    )
    return DataDecision(
        mode=mode,
        reason=reason,
        source_keys=source_keys,
        warnings=warnings,
        source_rdb_version=rdb_version,
        source_release=release or None,
        freeze=freeze,
    )


def source_key_count(data: DataPlan, aws: AwsClients) -> int | None:
    """How many keys ElastiCache holds (None: it could not be read; ``none`` needs nothing from it)."""
    try:
        with RedisLink(data.source, read_credentials(data.source, aws)) as link:
            return sum(keyspace(link).values())
    except (MigrationError, RedisError, OSError) as error:
        logger.warning("ElastiCache's key count could not be read", extra={"error": str(error)})
        return None
