"""Data digest benchmark: keys per second of the Python digest and of the host's Lua digest.

Run: ``.venv/bin/python benchmarks/data_digest.py [--keys 200000]``. Starts its own redis-server on
a free 127.0.0.1 port (the install's ACL line, AOF on), fills it with ``--keys`` keys (strings,
with a hash every tenth key and a TTL every fifth), then times:

- the Python digest (:func:`redis_migration.data.digest.digest_redis`, pipelined redis-py);
- the host's digest: the Lua batch of ``host/redis_facts.sh`` run with EVAL, batch after batch,
  as ``inspect_redis.sh`` does through redis-cli (here from Python, without the process spawns).

Prints figures; asserts nothing but that both digests agree.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import tempfile
import time
from pathlib import Path

import redis
from redis_migration.data.digest import digest_redis

from redis_migration_ops.rehearsal.local_redis import local_redis_server

FACTS = Path(__file__).resolve().parents[1] / "layers/shared/redis_migration/host/redis_facts.sh"


def lua_batch_script() -> str:
    match = re.search(r"<<'EOF_LUA'\n(.*?)\nEOF_LUA", FACTS.read_text(), re.DOTALL)
    if match is None:
        raise SystemExit(f"no Lua digest in {FACTS}")
    return match.group(1)


def fill(client: redis.Redis, keys: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        if i % 10 == 1:
            pipe.hset(f"h:{i}", mapping={"a": i, "b": "x" * 16, "c": 3})
        else:
            pipe.set(f"k:{i}", "v" * 32)
        if i % 5 == 0:
            pipe.expire(f"k:{i}", 86_400)
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def host_digest(client: redis.Redis, script: str, batch: int = 1000) -> tuple[str, int]:
    acc, count = "0" * 40, 0
    for db in sorted(int(name[2:]) for name in client.info("keyspace")):
        cursor = "0"
        while True:
            cursor_b, seen, _, acc_b = client.eval(script, 0, db, cursor, batch, acc)
            cursor, acc = cursor_b.decode(), acc_b.decode()
            count += int(seen)
            if cursor == "0":
                break
    return hashlib.sha1(f"v1\n{count}\n{acc}".encode()).hexdigest(), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    args = parser.parse_args()
    password = secrets.token_hex(16)
    with (
        tempfile.TemporaryDirectory() as workdir,
        local_redis_server(Path(workdir), password, maxmemory="2gb") as port,
    ):
        client = redis.Redis(host="127.0.0.1", port=port, password=password)
        fill(client, args.keys)
        dbsize = int(client.dbsize())

        started = time.perf_counter()
        python = digest_redis(client)
        python_s = time.perf_counter() - started

        started = time.perf_counter()
        lua_digest, lua_keys = host_digest(client, lua_batch_script())
        lua_s = time.perf_counter() - started

        print(f"keys: {dbsize}")
        print(f"python digest: {python_s:.2f} s, {dbsize / python_s:,.0f} keys/s")
        print(f"host (Lua) digest: {lua_s:.2f} s, {dbsize / lua_s:,.0f} keys/s")
        print(f"agree: {python.digest == lua_digest and python.keys == lua_keys}")


if __name__ == "__main__":
    main()
