"""Backups and restores of the self-hosted Redis: SSM commands out, result lines back, metrics.

The host scripts (``host/backup_redis.sh``, ``host/restore_redis.sh``) snapshot and restore
Redis's own persistence files; see the backup script's header for why that is exact without the
password. The scheduled backup function sends the backup with an S3 URI (the host uploads with
its own role, ``aws s3 cp --checksum-algorithm SHA256``), follows the command, checks the object
S3 holds against the SHA-256 the host printed and publishes the outcome as metrics.

Upload is a separate, pluggable step on purpose: without ``--upload-s3-uri`` the archive stays in
the host's staging directory and :func:`upload_backup_archive` can put it in the bucket from
elsewhere (the sandbox tests do this with moto, where the sandbox has no network).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from redis_migration.aws import AwsClients
from redis_migration.host.scripts import script_command
from redis_migration.models import StackSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BACKUP_SCRIPT = "host/backup_redis.sh"
RESTORE_SCRIPT = "host/restore_redis.sh"
BACKUP_MARKER = "REDIS_BACKUP_RESULT "
RESTORE_MARKER = "REDIS_RESTORE_RESULT "
RUNNING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})
BACKUP_COMMAND_TIMEOUT_S = 600
POLL_INTERVAL_S = 3.0

_S3_URI = re.compile(r"^s3://[a-z0-9.-]{3,63}/[A-Za-z0-9._/=-]+$")

BACKUP_METRICS: dict[str, MetricUnit] = {
    "BackupSucceeded": MetricUnit.Count,
    "BackupSizeBytes": MetricUnit.Bytes,
    "BackupDurationSeconds": MetricUnit.Seconds,
}


class BackupSettings(BaseModel):
    """The backup-specific part of the stack's environment (``Globals.Function.Environment``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bucket: str = Field(alias="REDIS_BACKUP_BUCKET", min_length=3)


class BackupResult(BaseModel):
    """``backup_redis.sh``'s last line."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    ok: bool
    archive: str | None = None
    sha256: str | None = None
    bytes: int = 0
    aof: bool = False
    rdb: bool = False
    aof_trimmed_bytes: int = Field(default=0, alias="aofTrimmedBytes")
    uploaded: str | None = None
    error: str | None = None
    message: str = ""


class RestoreResult(BaseModel):
    """``restore_redis.sh``'s last line."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    ok: bool
    service: str | None = None
    previous_data_dir: str | None = Field(default=None, alias="previousDataDir")
    rolled_back: bool = Field(default=False, alias="rolledBack")
    error: str | None = None
    message: str = ""


class BackupReport(BaseModel):
    """What the scheduled backup returns and logs."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    s3_uri: str
    command_id: str | None = None
    sha256: str | None = None
    bytes: int = 0
    duration_s: float = 0.0
    reason: str | None = None


def build_backup_commands(*, upload_s3_uri: str | None = None, name: str | None = None) -> list[str]:
    """The backup command; without ``upload_s3_uri`` the archive stays in the host's staging dir."""
    arguments: list[str] = []
    if upload_s3_uri is not None:
        if not _S3_URI.fullmatch(upload_s3_uri):
            raise ValueError("upload_s3_uri must look like s3://bucket/key")
        arguments += ["--upload-s3-uri", upload_s3_uri]
    if name is not None:
        arguments += ["--name", name]
    return script_command(BACKUP_SCRIPT, arguments)


def build_restore_commands(
    *, sha256: str, s3_uri: str | None = None, archive: str | None = None
) -> list[str]:
    """The restore command, from S3 (``s3_uri``) or from a path on the host (``archive``)."""
    if (s3_uri is None) == (archive is None):
        raise ValueError("give exactly one of s3_uri and archive")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("sha256 must be 64 lowercase hex characters")
    source = ["--s3-uri", s3_uri] if s3_uri is not None else ["--archive", cast("str", archive)]
    return script_command(RESTORE_SCRIPT, [*source, "--sha256", sha256])


def _parse_last(output: str, marker: str, model: type[BaseModel]) -> Any:
    for line in reversed(output.splitlines()):
        position = line.find(marker)
        if position < 0:
            continue
        try:
            return model.model_validate(json.loads(line[position + len(marker) :]))
        except (ValueError, ValidationError):
            continue  # cut by SSM's output limit: look for an earlier complete line
    return None


def parse_backup_result(output: str) -> BackupResult | None:
    result: BackupResult | None = _parse_last(output, BACKUP_MARKER, BackupResult)
    return result


def parse_restore_result(output: str) -> RestoreResult | None:
    result: RestoreResult | None = _parse_last(output, RESTORE_MARKER, RestoreResult)
    return result


def backup_key(settings: StackSettings, now: datetime | None = None) -> tuple[str, str]:
    """(archive name, S3 key): one prefix per project, environment and instance."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = f"redis-{stamp}"
    return name, f"{settings.project_name}/{settings.environment}/{settings.instance_id}/{name}.tar.gz"


def sha256_base64(hex_digest: str) -> str:
    """S3's ``ChecksumSHA256`` (base64 of the digest) for a hex SHA-256."""
    return base64.b64encode(binascii.unhexlify(hex_digest)).decode("ascii")


def upload_backup_archive(s3: S3Client, path: Path, bucket: str, key: str) -> str:
    """Upload an archive copied off the host; S3 checks the SHA-256 on receipt. Returns the hex digest."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ChecksumSHA256=sha256_base64(digest),
        ServerSideEncryption="AES256",
    )
    return digest


def verify_uploaded(s3: S3Client, bucket: str, key: str, sha256_hex: str, size: int) -> str | None:
    """None when S3 holds exactly the archive the host described, else what differs."""
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    if head.get("ContentLength") != size:
        return f"S3 object has {head.get('ContentLength')} bytes, the host wrote {size}"
    checksum = head.get("ChecksumSHA256")
    # A multipart upload reports a checksum of checksums ("...-N"); the size check then stands alone.
    if checksum and "-" not in checksum and checksum != sha256_base64(sha256_hex):
        return "S3 object's SHA-256 differs from the archive's"
    return None


def run_scheduled_backup(
    settings: StackSettings,
    backup: BackupSettings,
    aws: AwsClients,
    s3: S3Client,
    sink: Metrics,
    *,
    remaining_s: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> BackupReport:
    """Send the backup, follow it while time allows, verify the object, publish the outcome.

    Never raises for an AWS or host failure: the outcome is the ``BackupSucceeded`` metric (0 or 1)
    and the returned report; a scheduler retry of a failed backup would only pile up commands.
    """
    name, key = backup_key(settings)
    s3_uri = f"s3://{backup.bucket}/{key}"
    started = time.monotonic()
    command_id: str | None = None
    result: BackupResult | None = None
    reason: str | None = None
    try:
        sent = aws.ssm.send_command(
            InstanceIds=[settings.instance_id],
            DocumentName="AWS-RunShellScript",
            Comment="redis-migration: backup Redis to S3",
            TimeoutSeconds=60,
            Parameters={
                "commands": build_backup_commands(upload_s3_uri=s3_uri, name=name),
                "executionTimeout": [str(BACKUP_COMMAND_TIMEOUT_S)],
            },
        )
        command_id = sent["Command"]["CommandId"]
        invocation = _follow(aws, command_id, settings.instance_id, remaining_s, sleep)
        if invocation is None:
            reason = f"command {command_id} still running when the function had to stop"
        else:
            result = parse_backup_result(invocation.get("StandardOutputContent", ""))
            if invocation["Status"] != "Success" or result is None or not result.ok:
                detail = f"{result.error}: {result.message}" if result else "no result line"
                reason = f"backup ended {invocation['Status']}: {detail}"
            elif result.sha256 is None:
                reason = "the result line carries no SHA-256"
            else:
                reason = verify_uploaded(s3, backup.bucket, key, result.sha256, result.bytes)
    except (ClientError, BotoCoreError, ValueError) as error:
        # ValueError: a bucket or key the command builder refuses (a misconfigured stack).
        reason = f"{type(error).__name__}: {error}"[:300]
    duration = round(time.monotonic() - started, 3)
    ok = reason is None and result is not None
    sink.add_dimension(name="environment", value=settings.environment)
    values = {"BackupSucceeded": 1.0 if ok else 0.0, "BackupDurationSeconds": duration}
    if ok and result is not None:
        values["BackupSizeBytes"] = float(result.bytes)
    for metric, value in values.items():
        sink.add_metric(name=metric, unit=BACKUP_METRICS[metric], value=value)
    return BackupReport(
        ok=ok,
        s3_uri=s3_uri,
        command_id=command_id,
        sha256=result.sha256 if result else None,
        bytes=result.bytes if result else 0,
        duration_s=duration,
        reason=reason,
    )


def _follow(
    aws: AwsClients,
    command_id: str,
    instance_id: str,
    remaining_s: Callable[[], float],
    sleep: Callable[[float], None],
) -> Mapping[str, Any] | None:
    """The finished invocation, or None when the function's time runs out first (bounded loop)."""
    max_polls = int(BACKUP_COMMAND_TIMEOUT_S / POLL_INTERVAL_S) + 10
    for _ in range(max_polls):
        try:
            invocation = aws.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as error:
            # Right after SendCommand the invocation may not be visible yet.
            if error.response.get("Error", {}).get("Code") != "InvocationDoesNotExist":
                raise
            invocation = None
        if invocation is not None and invocation["Status"] not in RUNNING_STATUSES:
            return cast("Mapping[str, Any]", invocation)
        if remaining_s() < POLL_INTERVAL_S + 5:
            return None
        sleep(POLL_INTERVAL_S)
    return None


def backup_settings(environ: Mapping[str, str]) -> BackupSettings:
    """The backup settings from an environment mapping."""
    return BackupSettings.model_validate(dict(environ))


def s3_client(region_name: str | None) -> S3Client:
    """An S3 client with the same timeouts and retries as :class:`AwsClients` (built on call)."""
    factory = AwsClients(region_name=region_name)
    return cast("S3Client", factory._build("s3"))
