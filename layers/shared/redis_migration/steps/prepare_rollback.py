"""PrepareRollback: plan the way back to ElastiCache for migrations that succeeded earlier.

The guide keeps ElastiCache for a 24-48 h soak; if the soak goes badly the operator starts an
execution with ``{"rollbackOf": "<execution ARN or name>"}`` naming a succeeded migration of this
state machine. Nothing in the input is trusted beyond that name: the records come from Step
Functions itself (DescribeExecution of this state machine's succeeded executions) and from the
records bucket, checked against the digests those executions recorded.

A rollback means "back on ElastiCache", whichever run switched a function: every function a
migration of this stack switched goes back to the ElastiCache values recorded when it was first
switched, where it still holds the values the latest run wrote (one changed by someone else since
is named, not overwritten). A function on the self-hosted Redis that no run recorded is named as
a leftover: the rollback never reports success while a function still points there.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.clients.preflight import functions_on_self_hosted
from redis_migration.decommission.guard import elasticache_gone
from redis_migration.errors import InvalidInput, RollbackRefused
from redis_migration.executions import migration_record, migration_records, refuse_concurrent_migration
from redis_migration.models import (
    REDIS_HOST,
    REDIS_PASSWORD_SECRET_ARN,
    AliasPlan,
    BaselineRef,
    FunctionPlan,
    IngressPlan,
    ManagedValues,
    MigrationPlan,
    MigrationRecord,
    PlanDocument,
    RevokeIngressInput,
    RollbackInput,
    RollbackPlan,
    RollbackRequest,
    StackSettings,
    describe_validation_error,
)
from redis_migration.records import plan_key, put_record, read_plan, record_location, write_batches
from redis_migration.steps.check_preconditions import SAMPLE_SIZE


def prepare_rollback(given: RollbackRequest, settings: StackSettings, aws: AwsClients) -> RollbackPlan:
    """Check the named migration, gather every record of this stack, plan the restore."""
    named = named_execution_arn(given.execution_input, given.state_machine_arn)
    with aws_errors_as_transient():
        refuse_concurrent_migration(given.state_machine_arn, given.execution_arn, aws)
        gone = elasticache_gone(settings.elasticache_replication_group_id, aws)
        if gone is not None:
            raise RollbackRefused(f"rollbackOf: {gone}")
        anchor = succeeded_migration(named, aws)
        records = [anchor, *(r for r in migration_records(given.state_machine_arn, aws) if r[0] != anchor[0])]
        records.sort(key=lambda record: record[1])  # oldest first
        documents = [
            (name, record, read_plan(record.plan.record, record.plan.plan_sha256, aws))
            for name, _, record in records
        ]
        self_hosted = {
            (str(record.target[REDIS_HOST]), record.plan.request.redis_port)
            for _, record, _ in documents
            if record.target.get(REDIS_HOST)
        }
        current = {
            str(config["FunctionName"])
            for host, port in self_hosted
            for config in functions_on_self_hosted(host, port, aws)
        }

    first_before: dict[str, ManagedValues] = {}
    last_target: dict[str, ManagedValues] = {}
    # The keys some run changed (its value before differs from what it wrote), per function.
    changed: dict[str, set[str]] = {}
    security_groups: dict[str, list[str]] = {}
    # Alias -> the version it served before the first run that moved it (versions are immutable,
    # so that version still holds the ElastiCache values).
    aliases: dict[str, dict[str, AliasPlan]] = {}
    for _, record, document in documents:
        for function in document.functions:
            name = function.function_name
            for alias in function.aliases:
                aliases.setdefault(name, {}).setdefault(alias.name, alias)
            written = function.values_after(record.target)
            before = first_before.setdefault(name, {})
            done = changed.setdefault(name, set())
            for key, value in written.items():
                # Each variable goes back to its value before the earliest run that changed it; a
                # run that found it already switched (a re-run) does not hold its ElastiCache value.
                if key not in before or (key not in done and function.before.get(key) != value):
                    before[key] = function.before.get(key)
                if function.before.get(key) != value:
                    done.add(key)
            # What the latest run wrote to each variable is what the function must still hold.
            last_target.setdefault(name, {}).update(written)
            security_groups[name] = function.security_group_ids

    # Every function a run of this stack switched goes back (the restore leaves one that someone
    # else changed since, and names it); one on the self-hosted Redis that no run recorded is named.
    switched = {name for name, keys in changed.items() if keys - {REDIS_PASSWORD_SECRET_ARN}}
    leftovers = [
        f"function {name}: points to the self-hosted Redis, but no migration of this stack "
        "recorded its ElastiCache values; set them by hand"
        for name in sorted(current - switched)
    ]
    entries: list[FunctionPlan] = []
    for name in sorted(switched):
        keys = list(dict.fromkeys([*first_before[name], *last_target[name]]))
        entries.append(
            FunctionPlan(
                function_name=name,
                before={key: first_before[name].get(key) for key in keys},
                security_group_ids=security_groups.get(name, []),
                target={key: last_target[name].get(key) for key in keys},
                aliases=list(aliases.get(name, {}).values()),
            )
        )

    _, _, anchor_record = anchor
    latest = documents[-1][1]
    location = record_location(settings.records_bucket, given.state_machine_arn, given.execution_arn)
    with aws_errors_as_transient():
        batches = write_batches(location, entries, aws)
        document = PlanDocument(
            execution_arn=given.execution_arn,
            kind="rollback",
            request=anchor_record.plan.request,
            instance=latest.plan.instance,
            target=latest.target,
            functions=entries,
            batches=batches,
            warnings=leftovers,
        )
        plan_sha256 = put_record(location, plan_key(location), document.to_json_dict(), aws)
    runs = [name for name, _, _ in documents]
    data_run, baseline = data_to_copy_back([record for _, record, _ in documents])
    plan = MigrationPlan(
        request=anchor_record.plan.request,
        instance=latest.plan.instance,
        secret_name=anchor_record.plan.secret_name,
        ingress=IngressPlan(
            group_id=latest.plan.ingress.group_id,
            port=latest.plan.ingress.port,
            source_group_ids=sorted({g for _, r, _ in documents for g in r.ingress.added_source_group_ids}),
            rule_description=latest.plan.ingress.rule_description,
        ),
        target=latest.target,
        secret_arn=latest.plan.secret_arn or latest.target.get("REDIS_PASSWORD_SECRET_ARN"),
        function_count=len(entries),
        function_sample=[entry.function_name for entry in entries[:SAMPLE_SIZE]],
        record=location,
        plan_sha256=plan_sha256,
        batches=batches,
        warnings=leftovers,
        host_before=data_run.plan.host_before if data_run is not None else None,
        data=(
            data_run.plan.data.model_copy(
                update={
                    "max_function_timeout": max(
                        r.plan.data.max_function_timeout for _, r, _ in documents if r.plan.data is not None
                    )
                }
            )
            if data_run is not None and data_run.plan.data is not None
            else None
        ),
    )
    return RollbackPlan(
        plan=plan,
        target=latest.target,
        ingress=RevokeIngressInput(
            group_id=latest.plan.ingress.group_id,
            port=latest.plan.ingress.port,
            added_source_group_ids=sorted(
                {g for _, r, _ in documents for g in r.ingress.added_source_group_ids}
            ),
            rule_descriptions=sorted({r.plan.ingress.rule_description for _, r, _ in documents}),
        ),
        rolled_back_runs=runs,
        leftovers=leftovers,
        # The host knows what each run switched (its records under runs/<name>/services/).
        host_service_runs=[name for name, record, _ in documents if record.plan.request.host_services],
        data_baseline=baseline,
    )


def data_to_copy_back(records: list[MigrationRecord]) -> tuple[MigrationRecord | None, BaselineRef | None]:
    """The run whose data the writers kept writing to, and its baseline when it was consistent.

    ``records``: oldest first. The latest run that moved data (warm or consistent) or switched a
    function with nothing copied: the writers' keys since its cutover are what a rollback must carry
    back. Only a consistent run has a baseline (the state of every key at its cutover); for any other
    there is no copy back, and ClearCopiedData names what only the self-hosted Redis holds.
    """
    for record in reversed(records):
        mode = record.data.mode if record.data is not None else None
        switched = record.cutover.changed if record.cutover is not None else 0
        if mode in ("warm", "consistent") or switched:
            baseline = record.data.baseline if record.data is not None and mode == "consistent" else None
            return record, baseline
    return (records[-1], None) if records else (None, None)


def named_execution_arn(execution_input: object, state_machine_arn: str) -> str:
    """The ARN of the execution ``rollbackOf`` names; it must belong to this state machine."""
    rollback_of = execution_input.get("rollbackOf") if isinstance(execution_input, dict) else None
    if isinstance(rollback_of, dict):
        raise InvalidInput(
            "rollbackOf: name a succeeded migration of this state machine (its execution ARN or name); "
            "a recorded output is no longer accepted: the rollback reads the record from Step Functions"
        )
    try:
        parsed = RollbackInput.model_validate(execution_input)
    except ValidationError as error:
        raise InvalidInput(f"RollbackInput: {describe_validation_error(error)}") from None
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":"
    reference = parsed.rollback_of
    if not reference.startswith("arn:"):
        return prefix + reference
    if not reference.startswith(prefix):
        raise RollbackRefused(
            f"rollbackOf: {reference} is not an execution of this state machine ({state_machine_arn})"
        )
    return reference


def succeeded_migration(execution_arn: str, aws: AwsClients) -> tuple[str, Any, MigrationRecord]:
    """(name, start date, record) of the named execution, refused unless it is a succeeded migration."""
    try:
        described = aws.stepfunctions.describe_execution(executionArn=execution_arn)
    except Exception as error:
        if error_code(error) in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise RollbackRefused(f"rollbackOf: no execution {execution_arn} in this state machine") from None
        raise
    name = described["name"]
    if described["status"] != "SUCCEEDED":
        raise RollbackRefused(
            f"rollbackOf: execution {name} is {described['status']}, not SUCCEEDED; a failed migration "
            "already put everything back (see its history)"
        )
    record = migration_record(described.get("output"))
    if record is None:
        raise RollbackRefused(
            f"rollbackOf: execution {name} succeeded but is not a migration (a dry run, a rollback or a "
            "decommission); there is nothing to roll back"
        )
    return name, described["startDate"], record
