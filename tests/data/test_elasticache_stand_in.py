"""The rehearsal's ElastiCache: TLS only, the AUTH token, restricted commands, its AOF, seeding, the hook."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_migration_ops.account.description import sample_account
from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.elasticache.endpoint import (
    RESTRICTED_COMMANDS,
    ElastiCacheEndpoint,
    ElastiCacheStandInError,
    SeedCommandsFailed,
    start_elasticache_endpoint,
)
from redis_migration_ops.rehearsal.local_account import build_account
from tests.data.conftest import ENDPOINT

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "local_engine" / "fixtures"


def _types(client: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_it_speaks_tls_only(elasticache: ElastiCacheEndpoint) -> None:
    # Given the stand-in of a replication group with in-transit encryption
    kwargs = elasticache.connection_kwargs(socket_timeout=5)
    plaintext = {k: v for k, v in kwargs.items() if not k.startswith("ssl")}
    # When a client speaks plaintext to its port, with the right token
    # Then it gets no answer: the server expects a TLS handshake and drops the connection
    with pytest.raises(redis.ConnectionError):
        redis.Redis(**plaintext, retry_on_error=[]).ping()
    with socket.create_connection(("127.0.0.1", elasticache.loopback_port), timeout=5) as raw:
        raw.sendall(b"*1\r\n$4\r\nPING\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            answer = raw.recv(64)
    assert not answer.startswith((b"+", b"-"))


def test_it_demands_the_auth_token(elasticache: ElastiCacheEndpoint, auth_token: str) -> None:
    kwargs = elasticache.connection_kwargs(socket_timeout=5)
    # Given TLS without the token: refused
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(**{**kwargs, "password": None}).ping()
    # Given a wrong token: refused
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(**{**kwargs, "password": auth_token[::-1]}).ping()
    # Given the token: answered
    assert redis.Redis(**kwargs).ping() is True


def test_the_certificate_is_checked_against_the_local_authority(elasticache: ElastiCacheEndpoint) -> None:
    # Given a client that trusts only the system's authorities
    kwargs = {**elasticache.connection_kwargs(socket_timeout=5), "ssl_ca_certs": None}
    # When it connects, Then the self-signed chain is refused
    with pytest.raises(redis.ConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        redis.Redis(**kwargs).ping()


@pytest.mark.parametrize("command", RESTRICTED_COMMANDS)
def test_each_command_elasticache_restricts_is_unknown(
    elasticache: ElastiCacheEndpoint, command: str
) -> None:
    client: Any = elasticache.admin_client(socket_timeout=5)
    # When a restricted command is sent (with an argument, as real use would)
    with pytest.raises(redis.ResponseError, match=f"unknown command '{command}'"):
        client.execute_command(command, "x")
    # Then the server is still there and unchanged
    assert client.ping() is True


def test_the_seeded_mix_has_every_type_ttls_binary_names_and_large_keys(
    elasticache: ElastiCacheEndpoint,
) -> None:
    # When 2,000 keys are seeded
    summary = elasticache.seed_keys(2000, seed=7)
    client = elasticache.admin_client()
    # Then every one is there, of every type (HyperLogLogs are strings to TYPE)
    assert client.dbsize() == summary.keys == 2000
    types = _types(client)
    assert set(types) == {"string", "hash", "list", "set", "zset", "stream"}
    assert types["string"] == summary.by_type["string"] + summary.by_type["hll"]
    assert client.info("keyspace")["db0"]["expires"] == summary.with_ttl > 300
    binary = list(client.scan_iter(match=b"seed:bin:*", count=1000))
    assert len(binary) == summary.binary_names == 200
    assert all(b"\x00" in key and b"\r\n" in key for key in binary)
    # And a few keys of several megabytes each
    assert len(summary.large_keys) == 3
    for key in summary.large_keys:
        assert int(client.memory_usage(key) or 0) > 2 * 1024 * 1024
    # And it is reproducible
    assert summary == elasticache.seed_keys(2000, seed=7)


def test_its_data_is_in_an_append_only_file_under_the_workdir(tmp_path: Path, auth_token: str) -> None:
    workdir = tmp_path / "elasticache"
    # Given a stand-in with seeded data, stopped
    with ElastiCacheEndpoint(workdir, [ENDPOINT], auth_token=auth_token) as first:
        first.seed_keys(500)
    assert (workdir / "data" / "appendonlydir" / "appendonly.aof.manifest").is_file()
    # When another server starts on the same directory
    with ElastiCacheEndpoint(workdir, [ENDPOINT], auth_token=auth_token) as second:
        # Then it loads every key from the append-only file
        assert second.admin_client().dbsize() == 500


def test_seed_commands_run_a_file_in_redis_cli_syntax(
    elasticache: ElastiCacheEndpoint, tmp_path: Path
) -> None:
    # Given a file of commands with comments, quotes and escapes
    commands = tmp_path / "seed.redis"
    commands.write_bytes(
        b"# campaign state\n"
        b"SET campaign:1:status running\n"
        b'SET "key with spaces" "tab\\there \\x00\\xff"\n'
        b"\n"
        b"HSET 'agent:7' name 'O\\'Brien' calls 12\n"
        b"RPUSH queue:1 a b c\n"
        b"PEXPIRE queue:1 3600000\n"
    )
    # When it runs
    ran = elasticache.seed_commands(commands)
    # Then every command ran, with redis-cli's quoting
    client = elasticache.admin_client()
    assert ran == 5
    assert client.get(b"key with spaces") == b"tab\there \x00\xff"
    assert client.hgetall("agent:7") == {b"name": b"O'Brien", b"calls": b"12"}
    assert client.lrange("queue:1", 0, -1) == [b"a", b"b", b"c"]
    assert 0 < client.pttl("queue:1") <= 3_600_000


def test_seed_commands_name_the_line_the_server_refused(
    elasticache: ElastiCacheEndpoint, tmp_path: Path
) -> None:
    commands = tmp_path / "seed.redis"
    commands.write_text("SET a 1\nCONFIG SET maxmemory 1mb\nSET b 2\n")
    with pytest.raises(SeedCommandsFailed, match=r"seed.redis:2: CONFIG: unknown command 'CONFIG'"):
        elasticache.seed_commands(commands)
    unbalanced = tmp_path / "bad.redis"
    unbalanced.write_text('SET a "1\n')
    with pytest.raises(SeedCommandsFailed, match=r"bad.redis:1: unbalanced double quotes"):
        elasticache.seed_commands(unbalanced)


def test_an_auth_token_without_tls_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="in-transit encryption"):
        ElastiCacheEndpoint(tmp_path, [ENDPOINT], auth_token="x" * 20, tls=False)


def test_a_custom_parameter_group_is_applied(tmp_path: Path) -> None:
    parameters = {"maxmemory-policy": "allkeys-lfu", "notify-keyspace-events": "KEA", "reserved-memory": "0"}
    stand_in = ElastiCacheEndpoint(tmp_path, [ENDPOINT], auth_token=None, tls=False, parameters=parameters)
    with stand_in as plain:
        client: Any = plain.admin_client()
        assert client.info("memory")["maxmemory_policy"] == "allkeys-lfu"
        # notify-keyspace-events is on: a subscriber sees a write
        subscriber = client.pubsub()
        subscriber.psubscribe("__keyspace@0__:*")
        client.set("k", "v")
        messages = [subscriber.get_message(timeout=1.0) for _ in range(3)]
        assert any(m and m["type"] == "pmessage" for m in messages)
        subscriber.close()
        assert plain.not_applied == ["reserved-memory"]


def test_the_rehearsal_hook_serves_the_account_endpoint_to_product_code(tmp_path: Path) -> None:
    trust_before = os.environ.get("SSL_CERT_FILE")
    # Given the sample account in the local engine and its stand-in started by the hook
    with LocalEngine(FIXTURES) as engine:
        account = build_account(engine, sample_account(1))
        with start_elasticache_endpoint(engine, account, tmp_path / "elasticache") as stand_in:
            stand_in.seed_keys(100)
            assert stand_in.tls_files is not None
            assert os.environ["SSL_CERT_FILE"] == str(stand_in.tls_files.trust_bundle)
            # When code connects as a function configured for ElastiCache would: the endpoint's
            # name, its port, TLS with the default trust store, the token from the secret
            secret = engine.client("secretsmanager").get_secret_value(SecretId=account.old_auth_secret_arn)
            token = "old-auth-token"
            assert token in secret["SecretString"]
            client = redis.Redis(host=ENDPOINT, port=6379, ssl=True, password=token, socket_timeout=5)
            # Then it reaches the stand-in, its certificate verified for that name
            assert client.dbsize() == 100
            client.close()
            # And every address moto reports for the group leads there too
            assert len(stand_in.hostnames) >= 2
            other = redis.Redis(host=stand_in.hostnames[1], port=6379, ssl=True, password=token)
            assert other.dbsize() == 100
            other.close()
            # And a name the certificate was not issued for is refused by the TLS check
            engine.map_address("imposter.example.com", 6379, ("127.0.0.1", stand_in.loopback_port))
            imposter = redis.Redis(host="imposter.example.com", port=6379, ssl=True, password=token)
            with pytest.raises(redis.ConnectionError, match=r"match|mismatch"):
                imposter.ping()
        # And the trust store is the machine's again once the engine stops
    assert os.environ.get("SSL_CERT_FILE") == trust_before


def test_a_second_stand_in_on_the_same_data_folder_is_refused(elasticache: ElastiCacheEndpoint) -> None:
    # Given a stand-in running on its folder
    # When another is started on the same folder (as `rehearse --decommission` once did)
    second = ElastiCacheEndpoint(elasticache.workdir, [ENDPOINT], auth_token=None, tls=False)
    # Then it is refused, naming the folder, and the first one still answers
    with pytest.raises(ElastiCacheStandInError, match="already runs on"):
        second.start()
    assert redis.Redis(**elasticache.connection_kwargs(socket_timeout=5)).ping()


def test_the_server_dies_with_the_process_that_started_it_even_by_sigkill(tmp_path: Path) -> None:
    # Given a process that starts a stand-in and then hangs
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from redis_migration_ops.local_engine.elasticache.endpoint import ElastiCacheEndpoint\n"
        f"folder = Path({str(tmp_path / 'owner')!r})\n"
        "stand_in = ElastiCacheEndpoint(folder, ['owner.local'], auth_token=None, tls=False)\n"
        "stand_in.start()\n"
        "print(stand_in.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        server = int(owner.stdout.readline())
        assert Path(f"/proc/{server}").exists()
        # When that process is killed with SIGKILL (no cleanup runs)
        owner.kill()
        owner.wait(timeout=10)
        # Then its redis-server goes too, within a few seconds
        deadline = time.monotonic() + 10
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server), "the stand-in's redis-server outlived its owner"
    finally:
        owner.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
