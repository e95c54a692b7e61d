"""ClearCopiedData (compensation): a failed run removes the keys its copy put on the self-hosted Redis.

Only when the self-hosted Redis held no key before the run (CheckData refuses a copy onto one that
did): then every key there came from this run's copy — in consistent mode the writers were frozen,
and the functions are back on ElastiCache before this runs — so emptying it leaves the host exactly
as it was. ElastiCache is never written: the copy only reads it.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients
from redis_migration.data.link import RedisLink, read_credentials
from redis_migration.models import Model, RedisEndpoint


class ClearCopiedDataInput(Model):
    target: RedisEndpoint


class ClearCopiedDataOutput(Model):
    keys_removed: int


def clear_copied_data(given: ClearCopiedDataInput, aws: AwsClients) -> ClearCopiedDataOutput:
    """Empty the self-hosted Redis (every database) and answer how many keys it held."""
    with RedisLink(given.target, read_credentials(given.target, aws)) as link:
        info = link.command("INFO", "keyspace")
        text = info.decode() if isinstance(info, bytes) else str(info)
        keys = sum(
            int(part.split("=", 1)[1])
            for line in text.splitlines()
            if line.startswith("db")
            for part in line.split(":", 1)[1].split(",")
            if part.startswith("keys=")
        )
        if keys:
            link.command("FLUSHALL", "SYNC")
    return ClearCopiedDataOutput(keys_removed=keys)
