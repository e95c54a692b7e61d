"""A run's records in S3: the plan and the per-function results that do not fit in a payload.

Step Functions refuses any state input or output over 256 KiB (``States.DataLimitExceeded``,
which no Catch can catch). A plan of 2,000 functions with their values before the change is
several hundred KiB, so the whole plan is written here once, in batch files the cutover and
restore Maps iterate over, and the execution carries only each file's SHA-256. Whoever reads a
record back (a later step, a rollback days later, the audit report) checks it against the digest
Step Functions recorded: an object changed in S3 is refused, never trusted.

Layout, under the stack's records bucket::

    <state machine name>/<execution name>/plan.json
    <state machine name>/<execution name>/batches/0000.json ...
    <state machine name>/<execution name>/results/<step>-0000.json ...
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from redis_migration.aws import AwsClients, error_code
from redis_migration.errors import RecordUnreadable
from redis_migration.models import FunctionPlan, PlanBatch, PlanDocument, RecordLocation

# At most this many Map iterations per migration: the history stays far below Step Functions'
# 25,000 events at 2,000 functions (7 events an iteration), and small migrations keep one
# function per iteration (so `--fail-at CutOverFunction#2` still means "the second function").
MAX_BATCHES = 100
MAX_BATCH_SIZE = 20


def canonical_json(document: Any) -> bytes:
    """The bytes a record is stored (and hashed) as: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_of(document: Any) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def record_location(bucket: str, state_machine_arn: str, execution_arn: str) -> RecordLocation:
    """The prefix of one execution's records: ``<state machine name>/<execution name>/``."""
    machine = state_machine_arn.rsplit(":", 1)[-1]
    execution = execution_arn.rsplit(":", 1)[-1]
    return RecordLocation(bucket=bucket, prefix=f"{machine}/{execution}/")


def batch_size(function_count: int) -> int:
    """Functions per Map iteration: one up to MAX_BATCHES functions, then just enough."""
    return max(1, min(MAX_BATCH_SIZE, math.ceil(function_count / MAX_BATCHES)))


def batch_key(location: RecordLocation, index: int) -> str:
    return f"{location.prefix}batches/{index:04d}.json"


def results_key(location: RecordLocation, step: str, index: int) -> str:
    return f"{location.prefix}results/{step}-{index:04d}.json"


def plan_key(location: RecordLocation) -> str:
    return f"{location.prefix}plan.json"


def put_record(location: RecordLocation, key: str, document: Any, aws: AwsClients) -> str:
    """Write ``document`` at ``key`` (idempotent: same content, same bytes); answer its SHA-256."""
    body = canonical_json(document)
    aws.s3.put_object(
        Bucket=location.bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    return hashlib.sha256(body).hexdigest()


def get_record(location: RecordLocation, key: str, sha256: str, aws: AwsClients) -> Any:
    """Read the record at ``key``; refuse it unless its SHA-256 is the one recorded."""
    try:
        body = aws.s3.get_object(Bucket=location.bucket, Key=key)["Body"].read()
    except Exception as error:
        if error_code(error) in {"NoSuchKey", "NoSuchBucket", "404"}:
            raise RecordUnreadable(f"s3://{location.bucket}/{key} is missing") from None
        raise
    if hashlib.sha256(body).hexdigest() != sha256:
        raise RecordUnreadable(
            f"s3://{location.bucket}/{key} does not match the digest the execution recorded; "
            "it was changed after the run wrote it and is not trusted"
        )
    return json.loads(body)


def find_record(location: RecordLocation, key: str, aws: AwsClients) -> Any | None:
    """A record this execution may have written in an attempt that did not return (None: absent).

    No digest pins it (the attempt died before answering one): only a step that writes under its
    own execution's prefix, and checks what it reads against the world, may use this.
    """
    try:
        body = aws.s3.get_object(Bucket=location.bucket, Key=key)["Body"].read()
    except Exception as error:
        if error_code(error) in {"NoSuchKey", "404"}:
            return None
        raise
    return json.loads(body)


def write_batches(
    location: RecordLocation, functions: Sequence[FunctionPlan], aws: AwsClients
) -> list[PlanBatch]:
    """Split ``functions`` into batch files (see batch_size) and answer the Map's items."""
    size = batch_size(len(functions))
    batches = []
    for index, start in enumerate(range(0, len(functions), size)):
        chunk = list(functions[start : start + size])
        document = [function.to_json_dict() for function in chunk]
        digest = put_record(location, batch_key(location, index), document, aws)
        label = chunk[0].function_name + (f" (+{len(chunk) - 1})" if len(chunk) > 1 else "")
        batches.append(PlanBatch(index=index, sha256=digest, count=len(chunk), label=label))
    return batches


def read_batch(location: RecordLocation, batch: PlanBatch, aws: AwsClients) -> list[FunctionPlan]:
    """The functions of one batch file, checked against the batch's recorded digest."""
    document = get_record(location, batch_key(location, batch.index), batch.sha256, aws)
    return [FunctionPlan.model_validate(entry) for entry in document]


def read_plan(record: RecordLocation, sha256: str, aws: AwsClients) -> PlanDocument:
    """The whole plan of a run, checked against the digest its execution recorded."""
    return PlanDocument.model_validate(get_record(record, plan_key(record), sha256, aws))
