"""`start --wait` and `watch` show the copy's, the verification's and the freeze's progress as it happens."""

from __future__ import annotations

from typing import Any

import redis

from redis_migration_ops.account.description import OLD_AUTH_KEY
from tests.cli.conftest import POLL_S, LocalStack

KEYS = 300


def seed(local_stack: LocalStack) -> None:
    """Keys in ElastiCache, written as a client in the VPC would (its endpoint, TLS, the AUTH token)."""
    account = local_stack.account
    client: Any = redis.Redis(
        host=account.elasticache_endpoint,
        port=6379,
        ssl=True,
        ssl_cert_reqs="required",
        password=account.elasticache_auth_token,
        socket_timeout=10,
    )
    try:
        pipe = client.pipeline(transaction=False)
        for index in range(KEYS):
            pipe.set(f"campaign:{index}", f"value-{index}")
        pipe.execute()
    finally:
        client.close()


def test_start_wait_and_watch_show_the_copy_the_verification_and_the_freeze(local_stack: LocalStack) -> None:
    # Given ElastiCache holds keys (so the run copies them consistently)
    seed(local_stack)
    given = local_stack.input_file("consistent", dataCopy="consistent", removeKeys=[OLD_AUTH_KEY])

    # When the migration is started and followed
    started = local_stack.cli(
        *local_stack.with_machine("start", "--input", str(given), "--wait", "--interval", POLL_S)
    )

    # Then the output follows the copy (keys of the source's total, rate), the freeze against its
    # bound, the copy of what changed, the verification, and the thaw
    assert started.exit_code == 0, started.stderr
    shown = started.stderr
    assert f"copy: {KEYS} of ~{KEYS} (100 %) keys;" in shown
    assert "freeze: the writers are frozen (at most 300 s until they thaw)" in shown
    assert "copy of what changed:" in shown
    assert f"verification: {KEYS} of {KEYS} (100 %) keys;" in shown
    assert "0 missing or different (frozen" in shown
    assert "freeze over after" in shown
    # And `watch` of the finished execution tells the same story
    arn = started.stdout.strip().splitlines()[0]
    watched = local_stack.cli("watch", arn, "--interval", POLL_S)
    assert watched.exit_code == 0, watched.stderr
    assert f"copy: {KEYS} of ~{KEYS} (100 %) keys;" in watched.stderr
    assert "freeze over after" in watched.stderr
