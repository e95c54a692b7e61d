"""The audit report of one execution, read from its Step Functions history.

A STANDARD execution's history is the audit trail; this module turns it into what an auditor
asks for: what started the run and with which input, every state with its start, end, duration
and result, the functions changed with their old and new values, the errors, and the rollback
path taken. The report is a pydantic model: ``--format json`` is its dump and loads back into an
equal report. Nothing here calls AWS, so the same code reads a live history or a saved one.

The plan's functions and the per-function results live in the run's records (S3), pinned by the
digests in the history; a ``RecordReader`` given by the caller reads them (the CLI checks each
digest). Without one, the report says where the records are instead of listing the functions.

History events are linked by ``previousEventId``; inside a Map the iterations interleave, so a
state's events are found by walking that chain, never by position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from redis_migration_ops.audit.history import (
    FAILURE_TYPES,
    TASK_END_TYPES,
    Event,
    HistoryIndex,
    iso_time,
    parse_json,
    seconds_between,
)

REPORT_VERSION = 1
SECRET_KEY = "REDIS_PASSWORD_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
ROLLBACK_ENTRY_STATES = ("IsRestoreNeeded", "PrepareRollback")
_CLI_NAME = re.compile(r"-\d{8}T\d{6}Z$")
# Reads one record: (the run's record location {"bucket", "prefix"}, key, recorded SHA-256) -> JSON.
RecordReader = Callable[[Mapping[str, Any], str, str], Any]
_UUID_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


class ReportModel(BaseModel):
    """camelCase on the wire like the workflow's own JSON; unknown fields refused on load."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ExecutionSummary(ReportModel):
    arn: str
    name: str
    state_machine_arn: str | None
    status: str
    outcome: str
    exit_code: int
    start_date: str | None
    stop_date: str | None
    duration_seconds: float | None
    redrive_count: int
    redrive_date: str | None
    error: str | None
    cause: str | None


class Trigger(ReportModel):
    """What started the run. Who (the IAM identity) is in CloudTrail's StartExecution event."""

    kind: Literal["cli", "eventbridge", "rollback", "decommission", "console-or-api"]
    detail: str
    environment: str | None
    release: str | None
    role_arn: str | None


class StateRun(ReportModel):
    name: str
    type: str
    depth: int
    item: str | None
    entered_at: str | None
    exited_at: str | None
    duration_seconds: float | None
    result: Literal["succeeded", "retried", "caught", "failed", "running", "stopped"]
    error: str | None
    cause: str | None
    summary: str | None


class ValueChange(ReportModel):
    key: str
    before: str | None
    after: str | None
    # How the variable named the cache (host, host:port, url; port for REDIS_PORT); None: not recorded.
    form: str | None = None


class FunctionRecord(ReportModel):
    function_name: str
    changes: list[ValueChange]
    cutover: str | None
    restore: str | None
    # The CloudFormation stack or Terraform that deploys it (its next deploy puts the old values back).
    managed_by: str | None = None


class ErrorRecord(ReportModel):
    state: str | None
    item: str | None
    at: str | None
    error: str
    cause: str | None


class Approval(ReportModel):
    decision: Literal["approved", "rejected", "timed out", "pending", "failed"]
    by: str | None
    at: str | None
    comment: str | None


class RollbackRecord(ReportModel):
    requested: bool
    reason_error: str | None
    reason_cause: str | None
    path: list[str]
    restores: list[dict[str, Any]]
    revoked_source_group_ids: list[str]
    left_to_do_by_hand: list[str]
    complete: bool | None


class DecommissionRecord(ReportModel):
    """What a decommission run planned, deleted and left; the way back and the saving."""

    migration: str | None
    planned: list[str]
    kept: list[str]
    refused_because: str | None
    final_snapshot: str | None
    snapshot_status: str | None
    exported_files: list[str]
    deleted: list[dict[str, Any]]
    revoked_rules: list[str]
    left: list[str]
    complete: bool | None
    saving: str | None
    monthly_saving_usd: float | None
    restore_commands: list[str]


class HostRecord(ReportModel):
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reverted: bool | None
    service_action: str | None
    differences: list[str]


class AfterCutoverRecord(ReportModel):
    """The data, the bake and the instance's services: from the execution's output when it
    succeeded, else from the last result of each step that ran."""

    data: dict[str, Any] | None = None
    copy_back: dict[str, Any] | None = None
    # ClearCopiedData: emptied (and why), or kept with what only it holds.
    cleared: dict[str, Any] | None = None
    bake: dict[str, Any] | None = None
    host_services: dict[str, Any] | None = None
    host_services_restored: dict[str, Any] | None = None
    elasticache_clients_before: Any = None
    elasticache_clients_after: Any = None


class AuditReport(ReportModel):
    report_version: int = REPORT_VERSION
    execution: ExecutionSummary
    trigger: Trigger
    input: Any
    request: dict[str, Any] | None
    approval: Approval | None
    secret: dict[str, Any] | None
    ingress: dict[str, Any] | None
    # Where the whole plan is (s3://...), and whether it was read and checked for this report.
    plan_record: str | None = None
    plan_record_read: bool = False
    functions: list[FunctionRecord]
    # For functions deployed by CloudFormation or Terraform: the values to put in their templates.
    template_guidance: list[str] = []
    # The instance's Redis before and after the run (config digest, ports, service, keys) and,
    # when the run failed after changing it, what the revert did and what still differs.
    host: HostRecord | None = None
    after_cutover: AfterCutoverRecord | None = None
    states: list[StateRun]
    errors: list[ErrorRecord]
    rollback: RollbackRecord | None
    decommission: DecommissionRecord | None = None

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> AuditReport:
        return cls.model_validate_json(text)


def function_changes(
    plan: Mapping[str, Any], target: Mapping[str, Any] | None = None, secret_arn: str | None = None
) -> dict[str, list[ValueChange]]:
    """Every plan function's managed values, before → after; keys whose value stays are left out.

    ``after`` is the run's target; the secret ARN is the one EnsurePasswordSecret answered or, in a
    plan where the secret does not exist yet, "(new secret <name>)". ``None`` means "absent".
    """
    after: dict[str, Any] = dict(target if target is not None else plan.get("target") or {})
    if after.get(SECRET_KEY) is None and SECRET_KEY in after:
        after[SECRET_KEY] = secret_arn or f"(new secret {plan.get('secretName')})"
    result: dict[str, list[ValueChange]] = {}
    for function in plan.get("functions") or []:
        before: Mapping[str, Any] = function.get("before") or {}
        # In a rollback plan each function carries the values it holds (the "before" of the
        # rollback is where it goes back to): show the way back, target -> before.
        own_target = function.get("target")
        if isinstance(own_target, dict):
            keys = list(dict.fromkeys([*own_target, *before]))
            result[str(function["functionName"])] = [
                ValueChange(key=key, before=own_target.get(key), after=before.get(key))
                for key in keys
                if own_target.get(key) != before.get(key)
            ]
            continue
        own = _own_values(function, after)
        forms: Mapping[str, Any] = function.get("forms") or {}
        keys = list(dict.fromkeys([*before, *own]))
        result[str(function["functionName"])] = [
            ValueChange(key=key, before=before.get(key), after=own.get(key), form=forms.get(key))
            for key in keys
            if before.get(key) != own.get(key)
        ]
    return result


def _own_values(function: Mapping[str, Any], run_values: Mapping[str, Any]) -> dict[str, Any]:
    """A plan function's values after the cutover: its own rewrites (its variables naming the cache,
    in their form) with the run's secret ARN and keys to remove; a plan made before per-function
    values has none, and the run's values apply (FunctionPlan.values_after)."""
    rewrites = function.get("rewrites")
    if not isinstance(rewrites, dict):
        return dict(run_values)
    values = dict(rewrites)
    for key, value in run_values.items():
        if key not in ("REDIS_HOST", "REDIS_PORT", *values):
            values[key] = value
    return values


def template_guidance(
    plan: Mapping[str, Any], target: Mapping[str, Any] | None = None, secret_arn: str | None = None
) -> list[str]:
    """Lines for the functions a CloudFormation stack or Terraform deploys: their next deploy puts
    the old values back unless their templates get the new ones, which these lines give exactly."""
    managed = [
        function
        for function in plan.get("functions") or []
        if function.get("managedBy") and not isinstance(function.get("target"), dict)
    ]
    if not managed:
        return []
    values: dict[str, Any] = dict(target if target is not None else plan.get("target") or {})
    if SECRET_KEY in values and values[SECRET_KEY] is None:
        values[SECRET_KEY] = secret_arn or (
            f"<the ARN of secret {plan.get('secretName')}, once the migration has created it>"
        )
    lines = [
        f"{len(managed)} function(s) are deployed by CloudFormation or Terraform: their next deploy puts "
        "the old values back unless their templates get these environment variables:",
    ]
    # Each function gets its own values (its variables naming the cache keep their form).
    for function in managed:
        own = _own_values(function, values)
        lines.append(f"  {function['functionName']}: {function['managedBy']}")
        kept = [f"{key}={value}" for key, value in own.items() if value is not None]
        lines.append("    set " + ", ".join(kept))
        removed = [key for key, value in own.items() if value is None]
        if removed:
            lines.append("    remove " + ", ".join(removed))
    return lines


class _Builder:
    """Builds one AuditReport; each method reads one aspect of the history."""

    def __init__(
        self,
        described: Mapping[str, Any],
        history: list[Event],
        exit_code: int,
        outcome: str,
        records: RecordReader | None = None,
    ) -> None:
        self.described = described
        self.records = records
        self.index = HistoryIndex(history)
        self.events = self.index.events
        self.exit_code = exit_code
        self.outcome = outcome
        self.exits: dict[int, Event] = {}
        self.owned: dict[int, list[Event]] = {}
        for event in self.events:
            if self.index.is_exited(event):
                entered = self.index.entered_of_exit(event)
                if entered is not None:
                    self.exits[int(entered["id"])] = event
            elif not self.index.is_entered(event):
                owner = self.index.owning_entered_id(event)
                if owner is not None:
                    self.owned.setdefault(owner, []).append(event)
        self.entered = [event for event in self.events if self.index.is_entered(event)]

    # -- helpers --------------------------------------------------------------------------------

    def _entered_named(self, name: str) -> list[Event]:
        return [event for event in self.entered if self.index.state_name(event) == name]

    def task_result(self, entered: Event) -> Any:
        """The task's result: a Lambda's Payload, or a service integration's output."""
        for event in reversed(self.owned.get(int(entered["id"]), [])):
            details = event.get("taskSucceededEventDetails")
            if details:
                output = parse_json(details.get("output"))
                if details.get("resourceType") == "lambda" and isinstance(output, dict):
                    return output.get("Payload")
                return output
        return None

    def last_result(self, name: str) -> Any:
        results = [self.task_result(event) for event in self._entered_named(name)]
        results = [result for result in results if result is not None]
        return results[-1] if results else None

    def failures(self, entered: Event) -> list[tuple[Event, str, str | None]]:
        found = []
        for event in self.owned.get(int(entered["id"]), []):
            if event["type"] in FAILURE_TYPES:
                details = next(
                    (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
                )
                found.append((event, str(details.get("error") or event["type"]), details.get("cause")))
        return found

    @staticmethod
    def _item(entered: Event) -> str | None:
        """What a Map iteration worked on: its batch's label (first function, and how many more)."""
        document = parse_json(entered["stateEnteredEventDetails"].get("input"))
        if not isinstance(document, dict):
            return None
        batch = document.get("batch")
        if isinstance(batch, dict) and isinstance(batch.get("label"), str):
            return str(batch["label"])
        if isinstance(document.get("functionName"), str):
            return str(document["functionName"])
        return None

    def read_record(self, plan: Mapping[str, Any], key: str, sha256: str) -> Any:
        """A record of the run, or None when there is no reader (or the record cannot be read)."""
        location = plan.get("record")
        if self.records is None or not isinstance(location, dict):
            return None
        try:
            return self.records(location, key, sha256)
        except Exception:  # reported as "not read": the history alone still makes a report
            return None

    def plan_document(self, plan: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The whole plan (every function and its values before), from the run's records."""
        if plan is None or not isinstance(plan.get("record"), dict) or not plan.get("planSha256"):
            return None
        document = self.read_record(plan, f"{plan['record']['prefix']}plan.json", str(plan["planSha256"]))
        return document if isinstance(document, dict) else None

    def batch_results(self, plan: Mapping[str, Any], state: str) -> dict[str, str]:
        """Per function, what the iterations of ``state`` (CutOverFunction, RestoreFunction) did."""
        found: dict[str, str] = {}
        for entered in self._entered_named(state):
            result = self.task_result(entered)
            failures = self.failures(entered)
            if isinstance(result, dict) and result.get("resultsKey") and result.get("resultsSha256"):
                rows = self.read_record(plan, str(result["resultsKey"]), str(result["resultsSha256"]))
                for row in rows if isinstance(rows, list) else []:
                    if not isinstance(row, dict):
                        continue
                    outcome = str(row.get("outcome"))
                    if state == "CutOverFunction":
                        text = {"changed": "changed", "unchanged": "unchanged (already set)"}.get(outcome)
                        found[str(row.get("functionName"))] = text or f"failed: {row.get('error')}"
                    else:
                        found[str(row.get("functionName"))] = f"{outcome}: {row.get('detail')}"
            elif failures and self._item(entered):
                found[f"(batch {self._item(entered)})"] = f"failed: {failures[-1][1]}: {failures[-1][2]}"
        return found

    def assigned(self, name: str, variable: str) -> Any:
        for entered in reversed(self._entered_named(name)):
            exited = self.exits.get(int(entered["id"]))
            variables = (exited or {}).get("stateExitedEventDetails", {}).get("assignedVariables") or {}
            if variable in variables:
                return parse_json(variables[variable])
        return None

    # -- parts ----------------------------------------------------------------------------------

    def plan(self) -> dict[str, Any] | None:
        plan = self.last_result("CheckPreconditions")
        if isinstance(plan, dict):
            return plan
        prepared = self.last_result("PrepareRollback")
        if isinstance(prepared, dict) and isinstance(prepared.get("plan"), dict):
            return dict(prepared["plan"])
        return None

    def states(self) -> list[StateRun]:
        live = self.described.get("status") in {"RUNNING", "PENDING_REDRIVE"}
        runs = []
        for entered in self.entered:
            key = int(entered["id"])
            exited = self.exits.get(key)
            failures = self.failures(entered)
            task_events = [e for e in self.owned.get(key, []) if e["type"] in TASK_END_TYPES]
            last_failed = bool(task_events) and task_events[-1]["type"] in FAILURE_TYPES
            result: Literal["succeeded", "retried", "caught", "failed", "running", "stopped"]
            if exited is not None:
                result = "caught" if last_failed else "retried" if failures else "succeeded"
            elif entered["type"] == "FailStateEntered" or failures:
                result = "failed"
            else:
                result = "running" if live else "stopped"
            error, cause = (failures[-1][1], failures[-1][2]) if failures else (None, None)
            entered_at = iso_time(entered.get("timestamp"))
            exited_at = iso_time(exited.get("timestamp")) if exited is not None else None
            if exited is None and failures:
                exited_at = iso_time(failures[-1][0].get("timestamp"))
            name = str(self.index.state_name(entered))
            runs.append(
                StateRun(
                    name=name,
                    type=str(entered["type"]).removesuffix("StateEntered"),
                    depth=self.index.depth(entered),
                    item=self._item(entered),
                    entered_at=entered_at,
                    exited_at=exited_at,
                    duration_seconds=seconds_between(entered_at, exited_at),
                    result=result,
                    error=error,
                    cause=cause,
                    summary=summarize(name, self.task_result(entered), entered, exited),
                )
            )
        return runs

    def errors(self) -> list[ErrorRecord]:
        records = []
        for entered in self.entered:
            for event, error, cause in self.failures(entered):
                records.append(
                    ErrorRecord(
                        state=self.index.state_name(entered),
                        item=self._item(entered),
                        at=iso_time(event.get("timestamp")),
                        error=error,
                        cause=cause,
                    )
                )
        return records

    def approval(self) -> Approval | None:
        gates = self._entered_named("WaitForApproval") + self._entered_named("WaitForDecommissionApproval")
        if not gates:
            return None
        gate = gates[-1]
        answer = self.task_result(gate)
        if isinstance(answer, dict):
            return Approval(
                decision="approved",
                by=_str_or_none(answer.get("by")),
                at=_str_or_none(answer.get("at")),
                comment=_str_or_none(answer.get("comment")),
            )
        failures = self.failures(gate)
        if failures:
            event, error, cause = failures[-1]
            decision: Literal["rejected", "timed out", "failed"] = (
                "rejected" if error == "ApprovalRejected" else "timed out" if "Timeout" in error else "failed"
            )
            if event["type"] == "TaskTimedOut":
                decision = "timed out"
            by = None
            if cause and cause.startswith("rejected by ") and ": " in cause:
                by = cause.removeprefix("rejected by ").split(": ", 1)[0]
            return Approval(decision=decision, by=by, at=iso_time(event.get("timestamp")), comment=cause)
        return Approval(decision="pending", by=None, at=None, comment=None)

    def functions(self, plan: Mapping[str, Any] | None) -> list[FunctionRecord]:
        document = self.plan_document(plan)
        if plan is None or document is None:
            return []
        secret = self.last_result("EnsurePasswordSecret")
        secret_arn = secret.get("secretArn") if isinstance(secret, dict) else None
        changes = function_changes(
            {**document, "secretName": plan.get("secretName")}, plan.get("target"), secret_arn
        )
        cutovers = self.batch_results(plan, "CutOverFunction")
        restores = self.batch_results(plan, "RestoreFunction")
        tools = {
            str(function["functionName"]): function.get("managedBy")
            for function in document.get("functions") or []
        }
        return [
            FunctionRecord(
                function_name=name,
                changes=values,
                cutover=cutovers.get(name),
                restore=restores.get(name),
                managed_by=tools.get(name),
            )
            for name, values in changes.items()
        ]

    def template_guidance(self, plan: Mapping[str, Any] | None) -> list[str]:
        document = self.plan_document(plan)
        if plan is None or document is None:
            return []
        secret = self.last_result("EnsurePasswordSecret")
        secret_arn = secret.get("secretArn") if isinstance(secret, dict) else None
        return template_guidance(
            {**document, "secretName": plan.get("secretName")}, plan.get("target"), secret_arn
        )

    def host(self, plan: Mapping[str, Any] | None) -> HostRecord | None:
        inspected = self.last_result("InspectHostBefore")
        before = (plan or {}).get("hostBefore") or (inspected or {}).get("state")
        revert = self.last_result("RevertRedisHost")
        after_inspection = self.last_result("InspectHostAfter")
        after = (after_inspection or {}).get("state") or (revert or {}).get("hostAfter")
        if before is None and after is None:
            return None
        return HostRecord(
            before=before,
            after=after,
            reverted=revert.get("changed") if isinstance(revert, dict) else None,
            service_action=revert.get("serviceAction") if isinstance(revert, dict) else None,
            differences=list(revert.get("differences") or []) if isinstance(revert, dict) else [],
        )

    def after_cutover(self) -> AfterCutoverRecord | None:
        output = parse_json(self.described.get("output"))
        output = output if isinstance(output, dict) else {}
        decision = self.last_result("CheckData")
        verify = self.last_result("VerifyData")
        data = output.get("data") or (
            {"mode": decision.get("mode"), "reason": decision.get("reason"), "verify": verify}
            if isinstance(decision, dict)
            else None
        )
        copy_back = self.last_result("CopyDataBack")
        cleared = self.last_result("ClearCopiedData")
        record = AfterCutoverRecord(
            data=data,
            copy_back=copy_back if isinstance(copy_back, dict) else None,
            cleared=cleared if isinstance(cleared, dict) else None,
            bake=output.get("bake") or self.last_result("CheckBake"),
            host_services=output.get("hostServices") or self.last_result("CutOverHostServices"),
            host_services_restored=self.last_result("RestoreHostServices"),
            elasticache_clients_before=output.get("clientsBefore")
            or self.last_result("CheckElastiCacheClientsBefore")
            or self.last_result("ListElastiCacheClientsBefore"),
            elasticache_clients_after=output.get("clientsAfter")
            or self.last_result("CheckElastiCacheClientsAfter")
            or self.last_result("ListElastiCacheClientsAfter"),
        )
        return record if any(value is not None for value in record.model_dump().values()) else None

    def rollback(self, plan: Mapping[str, Any] | None) -> RollbackRecord | None:
        top = [e for e in self.entered if self.index.depth(e) == 0]
        start = next(
            (i for i, e in enumerate(top) if self.index.state_name(e) in ROLLBACK_ENTRY_STATES), None
        )
        if start is None:
            return None
        path = [str(self.index.state_name(e)) for e in top[start:]]
        requested = path[0] == "PrepareRollback"
        # The failing state's Catch assigned $failure; it is the last state before the rollback that did.
        failure = None
        for entered in reversed(top[:start]):
            failure = self.assigned(str(self.index.state_name(entered)), "failure")
            if failure is not None:
                break
        restores = self.assigned("RestoreFunctions", "restores")
        revoke = self.last_result("RevokeRedisIngress")
        leftovers = self.assigned("ListRollbackLeftovers", "leftovers")
        error = self.described.get("error")
        if leftovers is None and error == "RollbackFailed":
            cause = parse_json(self.described.get("cause"))
            leftovers = cause.get("leftToDoByHand") if isinstance(cause, dict) else None
        reason_error = failure.get("Error") if isinstance(failure, dict) else None
        reason_cause = failure.get("Cause") if isinstance(failure, dict) else None
        if reason_error is None and self.described.get("status") == "FAILED" and error != "RollbackFailed":
            reason_error, reason_cause = error, self.described.get("cause")
        if requested:
            reason_error, reason_cause = "RollbackRequested", "rollback of a succeeded migration requested"
        finished = leftovers is not None
        return RollbackRecord(
            requested=requested,
            reason_error=_str_or_none(reason_error),
            reason_cause=_str_or_none(reason_cause),
            path=path,
            restores=[dict(item) for item in restores or [] if isinstance(item, dict)],
            revoked_source_group_ids=list(revoke.get("revokedSourceGroupIds", []))
            if isinstance(revoke, dict)
            else [],
            left_to_do_by_hand=[str(item) for item in leftovers or []],
            complete=(not leftovers) if finished else None,
        )

    def decommission(self) -> DecommissionRecord | None:
        plan = self.last_result("CheckDecommissionPreconditions")
        if not self._entered_named("CheckDecommissionPreconditions"):
            return None
        plan = plan if isinstance(plan, dict) else {}
        status, error, cause = (
            self.described.get("status"),
            self.described.get("error"),
            self.described.get("cause"),
        )
        snapshot = self.last_result("CheckFinalSnapshot") or self.last_result("CreateFinalSnapshot")
        exported = self.last_result("CheckExportedSnapshot")
        reports = [
            self.last_result(name)
            for name in (
                "DeleteCacheSubnetGroup",
                "DeleteCacheParameterGroup",
                "DeleteElastiCacheSecurityGroups",
                "ScheduleAuthTokenSecretDeletion",
            )
        ]
        deleted: list[dict[str, Any]] = []
        group = self.last_result("CheckReplicationGroupDeleted") or self.last_result("DeleteReplicationGroup")
        if isinstance(group, dict):
            deleted.append(
                {
                    "resource": f"replication group {group.get('replicationGroupId')}",
                    "outcome": "deleted" if group.get("deleted") else str(group.get("status")),
                }
            )
        revoked: list[str] = []
        for report in reports:
            if isinstance(report, dict):
                deleted += [dict(item) for item in report.get("items") or [] if isinstance(item, dict)]
                revoked += [str(rule) for rule in report.get("revokedRules") or []]
        left: list[str] = []
        if error == "DecommissionIncomplete":
            parsed = parse_json(cause)
            left = (
                [str(item) for item in (parsed or {}).get("left") or []] if isinstance(parsed, dict) else []
            )
        saving: dict[str, Any] = plan["saving"] if isinstance(plan.get("saving"), dict) else {}
        complete = True if status == "SUCCEEDED" else (False if error == "DecommissionIncomplete" else None)
        return DecommissionRecord(
            migration=_str_or_none((plan.get("migration") or {}).get("name")),
            planned=[str(line) for line in plan.get("inventoryLines") or []],
            kept=[str(line) for line in plan.get("kept") or []],
            refused_because=_str_or_none(cause) if error == "DecommissionRefused" else None,
            final_snapshot=_str_or_none(plan.get("snapshotName")),
            snapshot_status=_str_or_none(snapshot.get("status")) if isinstance(snapshot, dict) else None,
            exported_files=[str(key) for key in (exported or {}).get("objects") or []]
            if isinstance(exported, dict)
            else [],
            deleted=deleted,
            revoked_rules=revoked,
            left=left,
            complete=complete,
            saving=_str_or_none(plan.get("savingSummary")),
            monthly_saving_usd=saving.get("monthlyUsd")
            if isinstance(saving.get("monthlyUsd"), int | float)
            else None,
            restore_commands=[str(command) for command in plan.get("restoreCommands") or []],
        )

    def trigger(self, request: Mapping[str, Any] | None, plan: Mapping[str, Any] | None) -> Trigger:
        started = next((e for e in self.events if e["type"] == "ExecutionStarted"), None)
        details = (started or {}).get("executionStartedEventDetails") or {}
        execution_input = parse_json(details.get("input", self.described.get("input")))
        name = str(self.described.get("name", ""))
        known = request or (plan or {}).get("request") or {}
        environment = _str_or_none(known.get("environment"))
        release = _str_or_none(known.get("release"))
        kind: Literal["cli", "eventbridge", "rollback", "decommission", "console-or-api"]
        if isinstance(execution_input, dict) and "rollbackOf" in execution_input:
            kind, detail = "rollback", f"rollback of the migration of {environment} (release {release})"
        elif isinstance(execution_input, dict) and "decommissionOf" in execution_input:
            kind, detail = (
                "decommission",
                f"decommission of ElastiCache after {execution_input['decommissionOf']}",
            )
        elif (
            _UUID_NAME.match(name)
            and isinstance(execution_input, dict)
            and set(execution_input)
            <= {
                "environment",
                "release",
            }
        ):
            kind, detail = "eventbridge", f"release event: {environment} release {release}"
        elif _CLI_NAME.search(name):
            kind, detail = "cli", "redis-migration CLI (the name carries environment, release and UTC time)"
        else:
            kind, detail = (
                "console-or-api",
                "console, aws stepfunctions start-execution or another API caller",
            )
        return Trigger(
            kind=kind,
            detail=detail,
            environment=environment,
            release=release,
            role_arn=details.get("roleArn"),
        )

    def build(self) -> AuditReport:
        described = self.described
        plan = self.plan()
        request = self.last_result("ValidateInput")
        request = request if isinstance(request, dict) else (plan or {}).get("request")
        secret = self.last_result("EnsurePasswordSecret")
        ingress = self.last_result("AllowRedisIngress")
        start_date, stop_date = iso_time(described.get("startDate")), iso_time(described.get("stopDate"))
        started = next((e for e in self.events if e["type"] == "ExecutionStarted"), {})
        execution_input = parse_json(
            described.get("input", (started.get("executionStartedEventDetails") or {}).get("input"))
        )
        return AuditReport(
            execution=ExecutionSummary(
                arn=str(described["executionArn"]),
                name=str(described.get("name", "")),
                state_machine_arn=_str_or_none(described.get("stateMachineArn")),
                status=str(described.get("status")),
                outcome=self.outcome,
                exit_code=self.exit_code,
                start_date=start_date,
                stop_date=stop_date,
                duration_seconds=seconds_between(start_date, stop_date),
                redrive_count=int(described.get("redriveCount") or 0),
                redrive_date=iso_time(described.get("redriveDate")),
                error=_str_or_none(described.get("error")),
                cause=_str_or_none(described.get("cause")),
            ),
            trigger=self.trigger(request, plan),
            input=execution_input,
            request=request,
            approval=self.approval(),
            secret=(
                {
                    "name": (plan or {}).get("secretName"),
                    "arn": secret.get("secretArn"),
                    "created": secret.get("created"),
                }
                if isinstance(secret, dict)
                else (
                    {"name": plan.get("secretName"), "arn": plan.get("secretArn"), "created": None}
                    if plan
                    else None
                )
            ),
            ingress=ingress if isinstance(ingress, dict) else (plan or {}).get("ingress"),
            plan_record=(
                f"s3://{plan['record']['bucket']}/{plan['record']['prefix']}plan.json"
                if plan and isinstance(plan.get("record"), dict)
                else None
            ),
            plan_record_read=self.plan_document(plan) is not None,
            functions=self.functions(plan),
            template_guidance=self.template_guidance(plan),
            host=self.host(plan),
            after_cutover=self.after_cutover(),
            states=self.states(),
            errors=self.errors(),
            rollback=self.rollback(plan),
            decommission=self.decommission(),
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def build_report(
    described: Mapping[str, Any],
    history: Iterable[Event],
    *,
    exit_code: int,
    outcome: str,
    records: RecordReader | None = None,
) -> AuditReport:
    """The audit report of the execution ``described`` (DescribeExecution) with its full history.

    ``records`` reads the run's records (plan, per-function results); without it the functions are
    not listed and ``planRecord`` says where they are.
    """
    return _Builder(described, list(history), exit_code, outcome, records).build()


# ---------------------------------------------------------------------------------------------
# One-line summaries of what a state did (from its own result; none of them holds a secret).


def _data_slice(name: str, result: dict[str, Any]) -> str:
    """One slice of a copy or a verification: how far, and any pass that started again."""
    counters = result.get("counters") or {}
    if name == "VerifyData":
        text = f"{counters.get('checked', 0)} keys checked, {counters.get('missing', 0)} missing"
    else:
        scanned, restored = counters.get("scanned", 0), counters.get("restored", 0)
        text = f"{result.get('mode')} copy: {scanned} keys scanned, {restored} restored"
    text += ", done" if result.get("done") else ", going on"
    restarts = result.get("restarts") or []
    if restarts:
        text += f"; started again {len(restarts)} time(s): {restarts[-1]}"
    return text


def summarize(name: str, result: Any, entered: Event, exited: Event | None) -> str | None:
    """What the state did, in a few words, for the states whose result an auditor reads."""
    if not isinstance(result, dict):
        if name == "DryRunComplete" and exited is not None:
            return "dry run: stopped after the plan, nothing changed"
        return None
    if name == "ValidateInput":
        functions = result.get("functions")
        listed = f"{len(functions)} function(s) listed" if functions else "functions discovered"
        return f"environment {result.get('environment')}, release {result.get('release')}, {listed}"
    if name == "CheckPreconditions":
        instance = result.get("instance") or {}
        return (
            f"{result.get('functionCount')} function(s) to switch to "
            f"{instance.get('privateIp')}:{(result.get('request') or {}).get('redisPort')}"
            f" on {instance.get('instanceId')}"
        )
    if name == "EnsurePasswordSecret":
        return f"{'created' if result.get('created') else 'reused'} secret {result.get('secretArn')}"
    if name == "AllowRedisIngress":
        return (
            f"{result.get('groupId')} tcp {result.get('port')}: added {result.get('addedSourceGroupIds')}, "
            f"already present {result.get('alreadyPresentSourceGroupIds')}"
        )
    if name == "InstallRedis":
        return f"command {result.get('commandId')} sent to {result.get('instanceId')}"
    if name == "CheckInstall":
        if not result.get("finished"):
            return str(result.get("status"))
        return (
            f"{result.get('status')}: {result.get('server')} {result.get('version')}, "
            f"config changed: {result.get('changed')}"
        )
    if name == "ProbeRedis":
        checks = [check for check in result.get("checks") or [] if isinstance(check, dict)]
        failed = [str(check.get("name")) for check in checks if not check.get("ok")]
        return f"{len(checks) - len(failed)}/{len(checks)} checks passed" + (
            f"; failed: {failed}" if failed else ""
        )
    if name == "WaitForApproval":
        return f"approved by {result.get('by')}" + (
            f": {result.get('comment')}" if result.get("comment") else ""
        )
    if name == "CutOverFunction":
        return (
            f"switched {result.get('changed')}, already on the new values {result.get('unchanged')}, "
            f"failed {result.get('failed')}"
        )
    if name == "VerifyCutover":
        return f"verified {result.get('verified')} function(s)"
    if name == "RestoreFunction":
        return (
            f"restored {result.get('restored')}, already as before {result.get('unchanged')}, "
            f"changed by others {result.get('changedByOthers')}"
        )
    if name == "VerifyFunctionsRestored":
        return (
            f"checked {result.get('checked')}: as before {result.get('asBefore')}, still on the self-hosted "
            f"Redis {result.get('stillOnSelfHosted')}, changed otherwise {result.get('otherDifferences')}"
        )
    if name in ("CopyData", "CopyDataBack", "VerifyData"):
        return _data_slice(name, result)
    if name == "PrepareRollback":
        plan = result.get("plan") or {}
        runs = result.get("rolledBackRuns")
        return f"{plan.get('functionCount')} function(s) to put back, from the runs {runs}"
    if name == "RevokeRedisIngress":
        return (
            f"revoked {result.get('revokedSourceGroupIds')}, "
            f"already absent {result.get('alreadyAbsentSourceGroupIds')}"
        )
    if name == "PrepareRollback":
        return f"rolling back {len((result.get('plan') or {}).get('functions') or [])} function(s)"
    return summarize_decommission(name, result)


def summarize_decommission(name: str, result: Mapping[str, Any]) -> str | None:
    """One line for each state of a decommission whose result an auditor reads."""
    if name == "CheckDecommissionPreconditions":
        problems = result.get("problems") or []
        return (
            f"{len(result.get('inventoryLines') or [])} resource(s) to delete, {len(problems)} reason(s) "
            "not to; "
            f"saving {result.get('savingSummary')}"
        )
    if name == "ListElastiCacheClients":
        return f"{len(result.get('clients') or [])} client(s) besides ourselves"
    if name in ("CreateFinalSnapshot", "CheckFinalSnapshot"):
        return f"snapshot {result.get('snapshotName')}: {result.get('status')}"
    if name in ("ExportFinalSnapshot", "CheckExportedSnapshot"):
        done = "finished" if result.get("finished") else "started" if result.get("started") else "running"
        return f"export to s3://{result.get('bucket')}: {done} {result.get('objects') or ''}".strip()
    if name in ("DeleteReplicationGroup", "CheckReplicationGroupDeleted"):
        return f"replication group {result.get('replicationGroupId')}: {result.get('status')}"
    if name in (
        "DeleteCacheSubnetGroup",
        "DeleteCacheParameterGroup",
        "DeleteElastiCacheSecurityGroups",
        "ScheduleAuthTokenSecretDeletion",
    ):
        items = [f"{item.get('resource')}: {item.get('outcome')}" for item in result.get("items") or []]
        return "; ".join(items + [f"revoked {rule}" for rule in result.get("revokedRules") or []])
    if name == "CheckDecommissionLeftovers":
        left = result.get("left") or []
        return f"left: {'; '.join(left)}" if left else "nothing left"
    if name == "DiscardFinalSnapshot":
        return f"discarded {result.get('discarded')}, kept {result.get('kept')}"
    return None
