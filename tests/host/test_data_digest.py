"""The canonical data digest: the same value for the same data on two servers, computed alike by
Python (redis-py, pipelined) and by the host (Lua inside Redis, through inspect_redis.sh).

Real redis-server processes on 127.0.0.1 (two throwaway servers), and the sandbox host's Redis
for the host side.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
import redis
from redis_migration.data.digest import DigestLimitExceeded, digest_redis
from redis_migration.host.state import build_inspect_commands, parse_host_state

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.local_redis import local_redis_server
from redis_migration_ops.rehearsal.sandbox_redis import start_existing_redis

pytestmark = pytest.mark.host

Writer = Callable[[redis.Redis], None]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    password = secrets.token_hex(16)
    first, second = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    with local_redis_server(first, password) as port_a, local_redis_server(second, password) as port_b:
        yield (
            redis.Redis(host="127.0.0.1", port=port_a, password=password),
            redis.Redis(host="127.0.0.1", port=port_b, password=password),
        )


@pytest.fixture
def clean(servers: tuple[redis.Redis, redis.Redis]) -> tuple[redis.Redis, redis.Redis]:
    for server in servers:
        server.flushall()
    return servers


def rich_data(client: redis.Redis, *, reverse: bool = False, big: int = 1500) -> None:
    """Every type, binary key names and values, TTLs, a HyperLogLog, two databases, and
    collections larger than one chunk. ``reverse`` writes the same data in another order."""
    order = reversed if reverse else (lambda items: items)
    for i in order(range(200)):
        client.set(f"s:{i}", f"v{i}")
    client.set(b"\x00bin\xffkey", b"\x00\x01\xfe")
    client.set("with-ttl", "x", ex=3600)
    client.hset("h", mapping=dict(order(list({f"f{i}": i for i in range(40)}.items()))))
    client.hset("big-h", mapping={f"f{i}": i for i in order(range(big))})
    client.rpush("l", *[f"e{i}" for i in range(10)])
    client.rpush("big-l", *range(big))
    client.sadd("set", *order(list(range(20))))
    client.sadd("big-set", *[f"m{i}" for i in order(range(big))])
    client.zadd("z", {"a": 0.1, "b": 1e300, "c": float("inf"), "d": -2.5, "e": 1 / 3})
    client.zadd("big-z", {f"m{i}": i / 7 for i in order(range(big))})
    for i in range(5):
        client.xadd("st", {"n": i, "dup": "a"}, id=f"{i + 1}-0")
    for i in range(big):
        client.xadd("big-st", {"i": i}, id=f"{i + 1}-1")
    client.pfadd("hll", *range(100))
    other_db = redis.Redis(
        connection_pool=redis.ConnectionPool(**{**client.connection_pool.connection_kwargs, "db": 3})
    )
    other_db.set("db3-key", "x")


def test_same_data_written_in_another_order_gives_the_same_digest(
    clean: tuple[redis.Redis, redis.Redis],
) -> None:
    a, b = clean
    rich_data(a)
    rich_data(b, reverse=True)

    first, second = digest_redis(a), digest_redis(b)

    assert first.digest == second.digest
    assert first.keys == second.keys == int(a.dbsize()) + 1  # + the key in db 3
    assert first.keys_by_db == {0: int(a.dbsize()), 3: 1}


def test_small_chunks_and_batches_give_the_same_digest(clean: tuple[redis.Redis, redis.Redis]) -> None:
    a, _ = clean
    rich_data(a, big=300)
    assert digest_redis(a, batch=7, chunk=10).digest == digest_redis(a).digest


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.set("s:1", "other"),
        lambda c: c.hset("big-h", "f7", "other"),
        lambda c: c.lset("big-l", 1200, "other"),
        lambda c: c.zadd("big-z", {"m3": 99}),
        lambda c: c.expire("s:2", 3600),  # a TTL where there was none
        lambda c: c.persist("with-ttl"),
        lambda c: c.rename("s:3", "s:3x"),
        lambda c: c.pfadd("hll", "new-member"),
        lambda c: c.xadd("st", {"n": 9}, id="99-0"),
        lambda c: c.delete("s:4"),
    ],
    ids=["string", "hash", "list", "zset", "ttl-added", "ttl-removed", "rename", "hll", "stream", "delete"],
)
def test_any_change_of_content_or_ttl_presence_changes_the_digest(
    clean: tuple[redis.Redis, redis.Redis], change: Writer
) -> None:
    a, b = clean
    rich_data(a)
    rich_data(b)
    change(b)
    assert digest_redis(a).digest != digest_redis(b).digest


def test_what_does_not_change_the_data_does_not_change_the_digest(
    clean: tuple[redis.Redis, redis.Redis],
) -> None:
    # PFCOUNT rewrites the HyperLogLog's cached cardinality; a TTL's value moves on its own
    a, b = clean
    rich_data(a)
    rich_data(b)
    b.pfcount("hll")
    b.expire("with-ttl", 7200)
    assert digest_redis(a).digest == digest_redis(b).digest


def test_a_limit_on_keys_is_refused_not_ignored(clean: tuple[redis.Redis, redis.Redis]) -> None:
    a, _ = clean
    rich_data(a, big=10)
    with pytest.raises(DigestLimitExceeded, match="more than the 5 allowed"):
        digest_redis(a, max_keys=5)


def test_the_client_settings_do_not_matter(clean: tuple[redis.Redis, redis.Redis]) -> None:
    a, _ = clean
    rich_data(a, big=10)
    kwargs = a.connection_pool.connection_kwargs
    decoded = redis.Redis(
        host=kwargs["host"],
        port=kwargs["port"],
        password=kwargs["password"],
        decode_responses=True,
        protocol=3,
    )
    assert digest_redis(decoded).digest == digest_redis(a).digest


def test_host_lua_digest_agrees_with_python(sandbox: SandboxHost) -> None:
    # Given Debian's Redis in the sandbox holding the rich data set (and the existing keys)
    start_existing_redis(sandbox, 50)
    host, port = sandbox.loopback_address(6379)
    client = redis.Redis(host=host, port=port)
    rich_data(client)

    # When the host computes the digest (Lua inside Redis, through the inspect script)
    result = sandbox.run_command(build_inspect_commands(6379), 120)
    state = parse_host_state(result.stdout)

    # Then it is Python's, key for key
    assert state is not None, result.stdout + result.stderr
    assert state.redis is not None
    python = digest_redis(client)
    assert (state.redis.digest, state.redis.digest_keys) == (python.digest, python.keys)
    assert state.redis.digest_reason is None

    # And above the host's limit there is no digest, with the reason
    limited = parse_host_state(
        sandbox.run_command(build_inspect_commands(6379, digest_max_keys=10), 120).stdout
    )
    assert limited is not None
    assert limited.redis is not None
    assert limited.redis.digest is None
    assert limited.redis.digest_reason == f"{python.keys} keys, more than the 10 digested on the host"
