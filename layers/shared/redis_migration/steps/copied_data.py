"""ClearCopiedData (compensation): empty the self-hosted Redis after a rollback, only when that
loses nothing a client wrote; otherwise keep it and name what only it holds.

Decided from what happened, never from a flag a later state resets:

- the self-hosted Redis held keys before the run: they are not this run's, it is never emptied;
- no client could have written to it: no function pointed at it while it could run (the run's
  cutover and restore records, every wave; in consistent mode, only once the writers were
  unfrozen), and no host service was switched to it. Then it holds the copy alone: emptied;
- a copy back carried every write since the cutover with no conflict: emptied;
- otherwise every key it holds is compared with ElastiCache: none missing or different there,
  emptied (nothing is lost); some, kept, and named (how many, the first keys) for the rollback's
  list of what is left to do. In warm mode that is the only way back for the clients' writes.

ElastiCache is only read here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from redis_migration.aws import AwsClients
from redis_migration.clients.switched import functions_pointed
from redis_migration.data.copy import keyspace
from redis_migration.data.link import RedisLink, read_credentials
from redis_migration.data.stranded import StrandedKeys, find_stranded
from redis_migration.models import Model, PlanBatch, RecordLocation, RedisEndpoint

COMPARE_SECONDS = 60.0
NAMED_WRITERS = 10


class CopyBackSummary(Model):
    done: bool
    conflicts: int = 0


class ClearCopiedDataInput(Model):
    target: RedisEndpoint
    # ElastiCache: what the self-hosted Redis holds is compared with it before anything is kept
    # (None when no function moved from ElastiCache: a re-run between self-hosted settings).
    source: RedisEndpoint | None = None
    mode: Literal["migrate", "rollback"] = "migrate"
    data_mode: Literal["none", "warm", "consistent"] = "none"
    # Keys the self-hosted Redis held before the run that put data there (None: no Redis ran).
    held_before: int | None = None
    record: RecordLocation | None = None
    batches: list[PlanBatch] = []
    # How many of the plan's batches the cutover reached (every wave begun).
    batches_started: Annotated[int, Field(ge=0)] = 0
    # consistent: the writers were unfrozen at some moment (UnfreezeWriters began).
    unfrozen: bool = False
    host_services_switched: bool = False
    copy_back: CopyBackSummary | None = None


class KeptData(Model):
    """What stays on the self-hosted Redis, and who could have written it."""

    writers: list[str]
    writer_count: int
    stranded: StrandedKeys


class ClearCopiedDataOutput(Model):
    keys_removed: int
    # Why it was emptied or kept, in one line.
    reason: str
    kept: KeptData | None = None


def clear_copied_data(given: ClearCopiedDataInput, aws: AwsClients) -> ClearCopiedDataOutput:
    """Empty the self-hosted Redis when that loses nothing (see the module doc); else name what it keeps."""
    writers = could_have_written(given, aws)
    with RedisLink(given.target, read_credentials(given.target, aws)) as link:
        keys = sum(keyspace(link).values())
        if keys == 0:
            return ClearCopiedDataOutput(keys_removed=0, reason="the self-hosted Redis holds no key")
        if given.held_before:
            reason = f"it held {given.held_before} keys before the run: not this run's to remove"
            return ClearCopiedDataOutput(keys_removed=0, reason=reason, kept=_kept(given, writers, link, aws))
        carried = given.copy_back is not None and given.copy_back.done and given.copy_back.conflicts == 0
        if not writers or carried:
            link.command("FLUSHALL", "SYNC")
            why = (
                "every write since the cutover was copied back to ElastiCache"
                if carried
                else "no client could have written to it: it held the copy alone"
            )
            return ClearCopiedDataOutput(keys_removed=keys, reason=why)
        kept = _kept(given, writers, link, aws)
        if kept is not None and kept.stranded.complete and kept.stranded.differing == 0:
            link.command("FLUSHALL", "SYNC")
            return ClearCopiedDataOutput(
                keys_removed=keys,
                reason="ElastiCache holds every key it holds, as it holds it: nothing is lost",
            )
    return ClearCopiedDataOutput(
        keys_removed=0,
        reason="clients wrote to it since the cutover and not all of it is on ElastiCache",
        kept=kept,
    )


def could_have_written(given: ClearCopiedDataInput, aws: AwsClients) -> list[str]:
    """The clients that could have written to the self-hosted Redis during the run (by name)."""
    writers: list[str] = []
    if given.mode == "rollback":
        # Every function of the migrations undone ran on it for the soak.
        if given.record is not None:
            writers = functions_pointed(given.record, given.batches, len(given.batches), aws)
    elif given.record is not None and (given.data_mode != "consistent" or given.unfrozen):
        writers = functions_pointed(given.record, given.batches, given.batches_started, aws)
    if given.host_services_switched:
        writers.append("the host services")
    return writers


def _kept(
    given: ClearCopiedDataInput, writers: list[str], link: RedisLink, aws: AwsClients
) -> KeptData | None:
    if given.source is None:
        return None
    with RedisLink(given.source, read_credentials(given.source, aws)) as there:
        stranded = find_stranded(link, there, COMPARE_SECONDS)
    return KeptData(writers=writers[:NAMED_WRITERS], writer_count=len(writers), stranded=stranded)
