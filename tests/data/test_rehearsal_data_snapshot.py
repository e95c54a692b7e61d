"""The rehearsal's "ElastiCache's data is as before" (rehearsal/data_snapshot.py), on the real stand-in:
short TTLs run out during the read and between two reads; the writers' keys are the ledger's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint
from redis_migration_ops.rehearsal.data_snapshot import read_snapshot
from redis_migration_ops.rehearsal.ledger import KEY_PREFIX
from redis_migration_ops.rehearsal.migration import LocalSetup

VOLATILE = 20_000


def admin(elasticache: ElastiCacheEndpoint) -> Any:
    return redis.Redis(**elasticache.connection_kwargs(socket_timeout=30))


def fill_with_expiring_keys(elasticache: ElastiCacheEndpoint) -> None:
    """Keys whose TTLs (1 ms to 3 s) run out while they are read, and a few that stay."""
    client = admin(elasticache)
    pipe = client.pipeline(transaction=False)
    for index in range(VOLATILE):
        pipe.set(f"session:{index}", "x" * 20, px=1 + index * 3000 // VOLATILE)
    for index in range(50):
        pipe.hset(f"campaign:{index}", mapping={"name": f"c{index}", "calls": index})
    pipe.execute()
    client.close()


def test_the_source_snapshot_survives_keys_expiring_while_it_is_read(
    elasticache: ElastiCacheEndpoint, tmp_path: Path
) -> None:
    # Given ElastiCache full of keys whose TTLs run out while the rehearsal reads it (a cache)
    fill_with_expiring_keys(elasticache)
    nothing: Any = None  # the source snapshot reads only the stand-in
    setup = LocalSetup(
        engine=nothing, account=nothing, sandbox=nothing, workdir=tmp_path, elasticache=elasticache
    )

    # When the rehearsal takes its snapshot of the source (once crashed with DigestUnstable)
    before = setup.source_data()
    time.sleep(3.2)
    after = setup.source_data()

    # Then it compares what can be compared and says what expired: no difference
    assert before is not None
    assert after is not None
    differences, expired = before.compare(after)
    assert differences == []
    assert expired == before.count - 50
    assert after.count == 50


def test_a_change_to_a_key_without_a_ttl_is_named(elasticache: ElastiCacheEndpoint) -> None:
    client = admin(elasticache)
    client.set("campaign:1", "a")
    client.set("campaign:2", "b", ex=3600)
    before = read_snapshot(elasticache.connection_kwargs())
    client.set("campaign:1", "changed")
    client.delete("campaign:2")
    client.set("campaign:3", "new")
    after = read_snapshot(elasticache.connection_kwargs())
    client.close()
    differences, expired = before.compare(after)
    assert expired == 0
    assert differences == [
        "1 key(s) missing (no TTL ran out) (e.g. b'campaign:2' (db 0))",
        "1 key(s) new (e.g. b'campaign:3' (db 0))",
        "1 key(s) with other content (e.g. b'campaign:1' (db 0))",
    ]


def test_the_writers_keys_are_left_to_the_ledger(elasticache: ElastiCacheEndpoint) -> None:
    client = admin(elasticache)
    client.set("campaign:1", "a")
    before = read_snapshot(elasticache.connection_kwargs(), exclude=KEY_PREFIX.encode())
    client.set(f"{KEY_PREFIX}campaign-worker-001:1", "written by a writer")
    after = read_snapshot(elasticache.connection_kwargs(), exclude=KEY_PREFIX.encode())
    client.close()
    assert before.compare(after) == ([], 0)
    assert after.excluded == 1


def test_a_set_read_in_another_order_is_the_same_set(elasticache: ElastiCacheEndpoint) -> None:
    # Given a large set (a hash table: its order is the server's) rewritten with the same members
    client = admin(elasticache)
    members = [f"agent-{n}" for n in range(600)]
    client.sadd("agents", *members)
    before = read_snapshot(elasticache.connection_kwargs())
    client.delete("agents")
    client.sadd("agents", *reversed(members))
    after = read_snapshot(elasticache.connection_kwargs())
    client.close()
    assert before.compare(after) == ([], 0)
