"""CheckData: the data preflight. Reads the source (and the target, once it answers) and applies
every rule of :mod:`redis_migration.data.preflight`; a refusal raises DataPreflightRefused (a
PreconditionFailed: nothing has changed), warnings go to the output for the plan."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from redis_migration.aws import AwsClients
from redis_migration.data.link import RedisEndpoint, RedisLink, read_credentials
from redis_migration.data.preflight import (
    DataPreflight,
    evaluate,
    planned_target_facts,
    read_source_facts,
    read_target_facts,
    with_described_engine,
)
from redis_migration.errors import PreconditionFailed
from redis_migration.models import ElastiCacheSourceFacts, Model
from redis_migration.watch.probe import memory_bytes


class DataPreflightRefused(PreconditionFailed):
    """A data rule refuses the migration (the message names each rule's code and reason)."""


class PlannedTarget(Model):
    """The target as the run will install it, when it does not answer yet."""

    maxmemory: str
    maxmemory_policy: str
    server: str = "redis"
    version: str = ""


class CheckDataInput(Model):
    source: RedisEndpoint
    # The running target, or the plan's numbers before the install (exactly one of the two).
    target: RedisEndpoint | None = None
    planned_target: PlannedTarget | None = None
    # consistent mode: a rollback copies the target's writes back (its RDB version matters).
    copy_back: bool = False
    big_key_samples: Annotated[int, Field(ge=0, le=100_000)] = 1_000
    # What ElastiCache's API says the source runs (its engine and version name it in the rules).
    source_group: ElastiCacheSourceFacts | None = None
    # The copy function's memory (MaxDataFunctionMemory): the largest key it can hold.
    copy_function_memory_mb: Annotated[int | None, Field(ge=128, le=10_240)] = None


def check_data_step(given: CheckDataInput, aws: AwsClients) -> DataPreflight:
    """Every data rule; raise DataPreflightRefused when one refuses."""
    if (given.target is None) == (given.planned_target is None):
        raise ValueError("give exactly one of target and plannedTarget")
    with RedisLink(given.source, read_credentials(given.source, aws)) as link:
        source = with_described_engine(
            read_source_facts(link, samples=given.big_key_samples), given.source_group
        )
    if given.target is not None:
        with RedisLink(given.target, read_credentials(given.target, aws)) as link:
            target = read_target_facts(link)
    else:
        planned = given.planned_target
        assert planned is not None  # checked above
        target = planned_target_facts(
            maxmemory=memory_bytes(planned.maxmemory),
            maxmemory_policy=planned.maxmemory_policy,
            server=planned.server,
            version=planned.version,
        )
    verdict = evaluate(
        source, target, copy_back=given.copy_back, copy_function_mb=given.copy_function_memory_mb
    )
    if not verdict.ok:
        raise DataPreflightRefused("; ".join(f"{f.code}: {f.message}" for f in verdict.refusals))
    return verdict
