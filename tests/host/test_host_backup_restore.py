"""Backup to S3 and restore, for real on the sandbox host: every key, value and expiry comes back.

The scripts run through the sandbox exactly as SSM would run them (``bash -s`` here-documents).
What this covers: the snapshot of the live AOF directory and dump.rdb, the archive, its checksum,
the upload of that archive to S3 (moto, from the test process: the sandbox has no network, so
the host's own ``aws s3 cp`` path is not exercised here), the download, the swap of the data
directory with owner and modes, the restart and the reload. What it does not cover: ``aws s3 cp``
on a real instance with its role (the integration tier's job).
"""

from __future__ import annotations

import pwd
import stat
from typing import Any

import boto3
import pytest
import redis
from moto import mock_aws
from redis_migration.host.install import InstallParameters
from redis_migration.watch.backup import (
    build_backup_commands,
    build_restore_commands,
    parse_backup_result,
    parse_restore_result,
    upload_backup_archive,
)

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

BUCKET = "campaign-system-redis-backups-test"
KEY = "campaign-system/dev/i-0123456789abcdef0/redis-test.tar.gz"
COMMAND_TIMEOUT_S = 120.0


def snapshot(client: redis.Redis) -> dict[Any, tuple[Any, Any]]:
    """Every key with its serialized value (type and content) and absolute expiry (ms, -1: none)."""
    result: dict[Any, tuple[Any, Any]] = {}
    for key in client.scan_iter(count=1000):
        result[key] = (client.dump(key), client.pexpiretime(key))
    return result


def test_backup_to_s3_then_restore_brings_back_every_key_and_expiry(
    sandbox: SandboxHost,
    run_install: RunInstall,
    install_params: InstallParameters,
    password: str,
    outputs: list[str],
    aws_env: None,
) -> None:
    # Given Redis installed by the script, holding keys of every type, most with an expiry
    _, installed = run_install(install_params)
    assert installed is not None
    assert installed.ok, installed.message
    host, port = sandbox.loopback_address(6379)
    client = redis.Redis(host=host, port=port, password=password, socket_timeout=5)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"string:{i}", f"value-{i}" * (i % 7 + 1), px=3_600_000 + i * 1000)
    for i in range(50):
        pipe.hset(f"hash:{i}", mapping={"a": i, "b": "x" * i})
        pipe.rpush(f"list:{i}", *range(i + 1))
        pipe.sadd(f"set:{i}", *range(i + 1))
        pipe.zadd(f"zset:{i}", {f"m{j}": j for j in range(i + 1)})
        pipe.pexpire(f"hash:{i}", 7_200_000 + i)
    pipe.set("no-expiry", "stays")
    pipe.execute()
    before = snapshot(client)
    assert len(before) == 500 + 4 * 50 + 1
    assert sum(1 for _, expiry in before.values() if expiry > 0) == 550

    # When the backup runs on the host (no upload flag: the archive waits in staging)
    backup = sandbox.run_command(build_backup_commands(name="redis-test"), COMMAND_TIMEOUT_S)
    outputs.extend([backup.stdout, backup.stderr])
    result = parse_backup_result(backup.stdout)
    assert result is not None, backup.stdout + backup.stderr
    assert result.ok, result.message
    assert result.aof is True
    assert result.archive == "/var/backups/redis-migration/redis-test.tar.gz"
    archive = sandbox.host_path(result.archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    # And the archive goes to S3 (moto), where S3 checks its SHA-256 on receipt
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        digest = upload_backup_archive(s3, archive, BUCKET, KEY)
        assert digest == result.sha256
        head = s3.head_object(Bucket=BUCKET, Key=KEY)
        assert head["ContentLength"] == result.bytes
        stored = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()

    # And the data is wiped, and a key written after the backup
    client.flushall()
    client.set("written-after-backup", "must not survive the restore")
    assert client.dbsize() == 1

    # And the archive fetched from S3 is restored on the host
    fetched = "/var/backups/redis-migration/fetched.tar.gz"
    sandbox.host_path(fetched).write_bytes(stored)
    wrong = sandbox.run_command(build_restore_commands(sha256="0" * 64, archive=fetched), COMMAND_TIMEOUT_S)
    refused = parse_restore_result(wrong.stdout)
    assert refused is not None
    assert refused.error == "ChecksumMismatch"
    assert client.get("written-after-backup") is not None  # nothing was touched
    restore = sandbox.run_command(
        build_restore_commands(sha256=result.sha256, archive=fetched), COMMAND_TIMEOUT_S
    )
    outputs.extend([restore.stdout, restore.stderr])
    restored = parse_restore_result(restore.stdout)
    assert restored is not None, restore.stdout + restore.stderr
    assert restored.ok, restored.message
    assert restored.service == "redis-server"

    # Then every key is back with the same value and the same expiry instant, and nothing else
    client = redis.Redis(host=host, port=port, password=password, socket_timeout=5)
    after = snapshot(client)
    assert client.get("written-after-backup") is None
    assert after.keys() == before.keys()
    assert after == before
    # And the data directory belongs to the service user, closed to others
    redis_user = pwd.getpwnam("redis")
    data_dir = sandbox.host_path("/var/lib/redis")
    for path in [data_dir, *data_dir.rglob("*")]:
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (redis_user.pw_uid, redis_user.pw_gid), path
        assert stat.S_IMODE(info.st_mode) & 0o007 == 0, path
    # And the replaced directory is kept as an undo
    assert restored.previous_data_dir is not None
    assert sandbox.host_path(restored.previous_data_dir).is_dir()
    # And no plain-text password anywhere in what the commands printed
    assert all(password not in text for text in outputs)
