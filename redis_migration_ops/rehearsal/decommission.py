"""Rehearsing the decommission: migrate, let the soak pass, retire the local ElastiCache.

`redis-migration rehearse --decommission` runs the migration as `rehearse` does (every ``--input``
in order, the seed, the data copy, the writers; one ElastiCache stand-in), then publishes what
ElastiCache's CloudWatch metrics would show (busy before the cutover, only its own monitoring
connections after), and runs ``{"decommissionOf": <the migration>, "soakHours": 0}`` with an export
to a local bucket that grants ElastiCache access, approving the gate as an operator would. The
report says what is gone (replication group, subnet group, parameter group, security groups), what
stays (the final snapshot, the export), the secret's scheduled deletion and the monthly saving.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from botocore.exceptions import ClientError
from redis_migration.decommission.preconditions import export_bucket_policy

from redis_migration_ops.account.description import sample_account
from redis_migration_ops.local_engine.elasticache.endpoint import (
    ElastiCacheEndpoint,
)
from redis_migration_ops.operations import exit_code_of, outcome_of, pending_task_token
from redis_migration_ops.rehearsal.local_account import LocalAccount
from redis_migration_ops.rehearsal.migration import (
    EXECUTION_TIMEOUT_S,
    EXIT_MIGRATED,
    LocalSetup,
    Progress,
    RehearsalError,
    RehearsalOptions,
    RehearsalResult,
    RunResult,
    checked_inputs,
    function_logs_to,
    honest_outcome,
    ledger_section,
    local_setup,
    prepare_setup,
    run_sequence,
    writers_running,
)
from redis_migration_ops.rehearsal.workdir import claim_workdir

APPROVAL_STATE = "WaitForDecommissionApproval"
# Before the cutover the rehearsal's ElastiCache was busy: what its metrics show for the hour before.
BUSY_CLIENTS = 6.0
BUSY_COMMANDS_PER_MINUTE = 1200.0


def export_bucket_name(account: LocalAccount) -> str:
    """The rehearsal's export bucket (a stack parameter: the stack's IAM names it)."""
    return f"{account.project_name}-elasticache-exports-{account.environment}"[:63]


def create_export_bucket(setup: LocalSetup) -> str:
    """The export bucket as an operator makes it today: a new bucket has ACLs disabled, so ElastiCache
    is let in by the bucket policy the decommission's refusal gives (``export_bucket_policy``)."""
    name = export_bucket_name(setup.account)
    s3 = setup.engine.client("s3")
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    policy = export_bucket_policy(name, setup.engine.region)
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    return name


def publish_soak_metrics(
    setup: LocalSetup, migration_stopped: datetime, *, clients_after: float = 0.0, commands_after: float = 0.0
) -> None:
    """ElastiCache's metrics around the cutover: busy for an hour before it, then ``clients_after``;
    the data it holds (the stand-in's ``used_memory``) as ``BytesUsedForCache`` throughout."""
    group = setup.account.replication_group_id
    if group is None:
        return
    engine = setup.engine
    held = stand_in_used_memory(setup)
    engine.publish_elasticache_metrics(
        group,
        migration_stopped - timedelta(hours=1),
        migration_stopped,
        connections=BUSY_CLIENTS,
        get_commands=BUSY_COMMANDS_PER_MINUTE * 0.8,
        set_commands=BUSY_COMMANDS_PER_MINUTE * 0.2,
        bytes_used=held,
    )
    engine.publish_elasticache_metrics(
        group,
        migration_stopped,
        datetime.now(UTC) + timedelta(minutes=2),
        connections=clients_after,
        get_commands=commands_after,
        bytes_used=held,
    )


def stand_in_used_memory(setup: LocalSetup) -> float | None:
    """The ElastiCache stand-in's ``used_memory`` (what ElastiCache reports as BytesUsedForCache)."""
    if setup.elasticache is None:
        return None
    client = setup.elasticache.admin_client()
    try:
        return float(client.info("memory")["used_memory"])
    except (redis.RedisError, OSError):
        return None  # not answering: no datapoint, as CloudWatch would have none
    finally:
        client.close()


@dataclass
class ElastiCacheState:
    """What a decommission may change, read from the local account."""

    replication_group: str | None  # its status, None when gone
    subnet_group: bool
    parameter_group: bool
    security_groups: dict[str, bool]
    secret_scheduled_for_deletion: bool | None
    secret_deletion_date: str | None
    snapshots: dict[str, str]
    exported_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def elasticache_state(setup: LocalSetup) -> ElastiCacheState:
    """The local ElastiCache as the account holds it now (trusted calls, outside any function's IAM)."""
    account, engine = setup.account, setup.engine
    description = account.description
    cache = description.elasticache if description is not None else None
    client = engine.client("elasticache")
    status = None
    if account.replication_group_id:
        try:
            status = client.describe_replication_groups(ReplicationGroupId=account.replication_group_id)[
                "ReplicationGroups"
            ][0]["Status"]
        except ClientError:
            status = None

    def exists(call: Any, **arguments: Any) -> bool:
        try:
            call(**arguments)
        except ClientError:
            return False
        return True

    subnet = bool(cache and cache.subnet_group) and exists(
        client.describe_cache_subnet_groups,
        CacheSubnetGroupName=cache.subnet_group.name if cache and cache.subnet_group else "",
    )
    custom = (
        cache.parameter_group
        if cache and cache.parameter_group and not cache.parameter_group.is_default
        else None
    )
    parameter = custom is not None and exists(
        client.describe_cache_parameter_groups, CacheParameterGroupName=custom.name
    )
    ec2 = engine.client("ec2")
    groups = {
        name: exists(ec2.describe_security_groups, GroupIds=[account.security_groups[name]])
        for name in (cache.security_groups if cache else [])
    }
    scheduled, when = None, None
    if account.old_auth_secret_arn:
        described = engine.client("secretsmanager").describe_secret(SecretId=account.old_auth_secret_arn)
        scheduled = bool(described.get("DeletedDate"))
        when = str(described["DeletedDate"]) if described.get("DeletedDate") else None
    snapshots = {
        str(s["SnapshotName"]): str(s["SnapshotStatus"]) for s in client.describe_snapshots()["Snapshots"]
    }
    bucket = export_bucket_name(account)
    try:
        listed = engine.client("s3").list_objects_v2(Bucket=bucket).get("Contents") or []
    except ClientError:
        listed = []
    return ElastiCacheState(
        replication_group=status,
        subnet_group=subnet,
        parameter_group=parameter,
        security_groups=groups,
        secret_scheduled_for_deletion=scheduled,
        secret_deletion_date=when,
        snapshots=snapshots,
        exported_files=[f"s3://{bucket}/{item['Key']}" for item in listed],
    )


def run_decommission(
    setup: LocalSetup,
    decommission_of: str,
    *,
    soak_hours: int = 0,
    export: bool = True,
    approve: bool = True,
    extra_input: dict[str, Any] | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    timeout_s: float = EXECUTION_TIMEOUT_S,
) -> RunResult:
    """Start a decommission, approve its gate as an operator would (unless ``approve`` is False: then
    ``requireApproval`` is off), follow it to its end."""
    execution_input: dict[str, Any] = {
        "decommissionOf": decommission_of,
        "soakHours": soak_hours,
        "requireApproval": approve,
    }
    if export:
        execution_input["exportBucket"] = create_export_bucket(setup)
    execution_input.update(extra_input or {})
    name = name or f"decommission-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    engine = setup.engine
    client = engine.client("stepfunctions")
    with function_logs_to(setup.workdir / "function-logs.jsonl"):
        arn = engine.start_execution(execution_input, name=name)
        deadline = time.monotonic() + timeout_s
        seen = 0
        waiting_for_gate = approve
        while True:
            described = dict(client.describe_execution(executionArn=arn))
            # Reading the whole history competes with the execution's thread for the GIL: only
            # while it is needed (progress lines, or until the gate is answered).
            if progress is not None or waiting_for_gate:
                history = engine.history(arn)
                if progress is not None:
                    for event in history[seen:]:
                        progress(event["type"], event)
                    seen = len(history)
                token = pending_task_token(history, APPROVAL_STATE) if waiting_for_gate else None
                if token is not None:
                    answer = {
                        "decision": "approved",
                        "by": "the rehearsal's operator",
                        "at": datetime.now(UTC).isoformat(),
                    }
                    client.send_task_success(taskToken=token, output=json.dumps(answer))
                    waiting_for_gate = False
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise RehearsalError(f"the decommission was still running after {timeout_s:.0f} s")
            time.sleep(0.1 if waiting_for_gate or progress is not None else 0.05)
    return RunResult(arn, described, engine.history(arn))


@contextmanager
def elasticache_running(setup: LocalSetup) -> Iterator[ElastiCacheEndpoint | None]:
    """The rehearsal's ElastiCache stand-in answering at the replication group's endpoint (CLIENT LIST):
    the one :func:`local_setup` started (a second server on the same data folder is refused)."""
    yield setup.elasticache if setup.account.replication_group_id is not None else None


def decommission_report(run: RunResult, before: ElastiCacheState, after: ElastiCacheState) -> dict[str, Any]:
    """What the decommission did, as an operator reads it (and a test checks it)."""
    described = run.described
    output = run.output if isinstance(run.output, dict) else {}
    cause = described.get("cause")
    left = None
    if described.get("error") == "DecommissionIncomplete" and cause:
        left = json.loads(cause).get("left")
    plan = next(
        (
            payload
            for payload in _lambda_payloads(run.history)
            if isinstance(payload, dict) and "inventory" in payload and "snapshotName" in payload
        ),
        {},
    )
    return {
        "status": described["status"],
        "exitCode": exit_code_of(described),
        "outcome": outcome_of(described),
        "error": described.get("error"),
        "cause": cause,
        "executionArn": described["executionArn"],
        "statesEntered": run.states_entered,
        "planned": output.get("deleted") or plan.get("inventoryLines"),
        "kept": output.get("kept") or plan.get("kept"),
        "finalSnapshot": plan.get("snapshotName"),
        "saving": output.get("savingSummary") or plan.get("savingSummary"),
        "monthlySavingUsd": (output.get("saving") or plan.get("saving") or {}).get("monthlyUsd"),
        "restoreCommands": output.get("restoreCommands") or plan.get("restoreCommands"),
        "left": left,
        "elastiCache": {"before": before.as_dict(), "after": after.as_dict()},
    }


def _lambda_payloads(history: list[dict[str, Any]]) -> Iterator[Any]:
    for event in history:
        details = event.get("taskSucceededEventDetails")
        if details and details.get("resourceType") == "lambda":
            try:
                yield json.loads(details.get("output") or "{}").get("Payload")
            except json.JSONDecodeError:
                continue


def rehearse_decommission(options: RehearsalOptions, progress: Progress | None = None) -> RehearsalResult:
    """Migrate as ``rehearse`` does (every input in order, the seed, the data copy, the writers), then
    decommission with the soak at zero once the last run ended migrated; write report.json (the
    migration's runs, then ``decommission``). The exit code is the decommission's, or the migration's
    when no decommission ran (and 1 when the ledger found a lost write)."""
    inputs = checked_inputs(options)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="redis-migration-rehearsal-"))
    started = time.monotonic()
    account = options.account or sample_account(options.functions)
    decommission: dict[str, Any] | None = None
    decommission_history: list[dict[str, Any]] | None = None
    with (
        claim_workdir(workdir),
        local_setup(workdir, account, keep_running=options.keep_running) as setup,
    ):
        prepare_setup(setup, options, inputs)
        with writers_running(setup, options.writer_settings()) as writes:
            sequence = run_sequence(setup, options, inputs, progress, name=options.name)
            last = sequence.results[-1]
            if (
                sequence.runs[-1]["exitCode"] == EXIT_MIGRATED
                and (last.output or {}).get("outcome") == "migrated"
            ):
                publish_soak_metrics(setup, last.described["stopDate"])
                cache_before = elasticache_state(setup)
                run = run_decommission(setup, last.execution_arn, progress=progress)
                decommission = decommission_report(run, cache_before, elasticache_state(setup))
                decommission_history = run.history
            ledger = ledger_section(setup, writes, sequence.results)
    report = dict(sequence.runs[-1])
    report["runs"] = sequence.runs
    report["failPointsNotReached"] = [
        str(point) for point in options.fail_at if point not in sequence.reached
    ]
    report["ledger"] = ledger
    report["decommission"] = decommission
    report["timings"] = {**sequence.timings, "totalSeconds": round(time.monotonic() - started, 3)}
    report["keptRunning"] = options.keep_running
    if decommission is not None:
        report["exitCode"] = decommission["exitCode"]
        (workdir / "decommission-history.json").write_text(
            json.dumps(decommission_history, indent=2, default=str)
        )
    honest_outcome(report)
    histories = [result.history for result in sequence.results]
    (workdir / "history.json").write_text(
        json.dumps(histories[0] if len(histories) == 1 else histories, indent=2, default=str)
    )
    (workdir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return RehearsalResult(exit_code=report["exitCode"], report=report, workdir=workdir)
