"""Operating the deployed workflow: start, follow, approve or reject, and roll back executions.

Everything here talks to Step Functions (and, to find the state machine, CloudFormation) through
a boto3 session, so the same code drives real AWS and the local engine's moto. The CLI is a thin
layer over this module; every failure an operator can cause or meet is an :class:`OperatorError`
carrying one clear line and the exit code to use, never a traceback.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from pydantic import ValidationError
from redis_migration.aws import AwsClients
from redis_migration.errors import RecordUnreadable
from redis_migration.models import MigrationInput, RecordLocation, describe_validation_error
from redis_migration.records import get_record

from redis_migration_ops.audit.history import (
    APPROVAL_REJECTED,
    APPROVAL_STATE,
    HistoryIndex,
    not_a_succeeded_migration,
    parse_json,
    pending_task_message,
)
from redis_migration_ops.audit.progress import DataProgress
from redis_migration_ops.decommission import APPROVAL_STATE as DECOMMISSION_APPROVAL_STATE
from redis_migration_ops.decommission import (
    DECOMMISSION_FAIL_STATES,
    DECOMMISSION_INCOMPLETE,
    decommission_differences,
    is_decommission,
)
from redis_migration_ops.rehearsal.migration import (
    EXIT_MIGRATED,
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLED_BACK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    REFUSED_INPUT_ERRORS,
)

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

STATE_MACHINE_ARN_ENV = "REDIS_MIGRATION_STATE_MACHINE_ARN"
MAX_EXECUTION_NAME = 80
# Statuses in which an execution may still change (PENDING_REDRIVE: a redrive was asked for).
_LIVE_STATUSES = frozenset({"RUNNING", "PENDING_REDRIVE"})
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_ARN = re.compile(
    r"^arn:(?P<partition>[a-z-]+):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>[A-Za-z]+):"
)
# Error codes that mean "what you typed does not name anything": usage (2), not an AWS failure.
_USAGE_CODES = frozenset(
    {
        "ExecutionDoesNotExist",
        "InvalidArn",
        "StateMachineDoesNotExist",
        "InvalidName",
        "InvalidExecutionInput",
        "ExecutionAlreadyExists",
        "InvalidToken",
        "TaskDoesNotExist",
        "TaskTimedOut",
        "ValidationError",
        "ValidationException",
    }
)

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


class OperatorError(Exception):
    """Something the operator must know, in one line, with the exit code the CLI ends with."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions into one-line OperatorErrors (2: your input, 1: the environment)."""
    try:
        yield
    except NoRegionError:
        raise OperatorError(
            "no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)", EXIT_USAGE
        ) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise OperatorError(
            "no AWS credentials found: set AWS_PROFILE or run `aws configure` / `aws sso login`",
            EXIT_UNEXPECTED,
        ) from None
    except EndpointConnectionError as error:
        raise OperatorError(f"cannot reach AWS: {error}", EXIT_UNEXPECTED) from None
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "")) or "ClientError"
        message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
        exit_code = EXIT_USAGE if code in _USAGE_CODES else EXIT_UNEXPECTED
        raise OperatorError(f"{code}: {message}", exit_code) from None
    except BotoCoreError as error:
        raise OperatorError(f"AWS client error: {error}", EXIT_UNEXPECTED) from None


# ---------------------------------------------------------------------------------------------
# Finding things: region, state machine, execution.


def region_of_arn(arn: str | None) -> str | None:
    """The region inside a Step Functions ARN (an ARN names its region; trust it over defaults)."""
    match = _ARN.match(arn or "")
    return match["region"] if match else None


def make_session(region: str | None, *arns: str | None) -> boto3.Session:
    """A session in ``region``, else the region of the first ARN given, else the AWS defaults.

    Raises OperatorError when no region can be found at all (before any call is made).
    """
    chosen = region or next((found for found in map(region_of_arn, arns) if found), None)
    session = boto3.Session(region_name=chosen) if chosen else boto3.Session()
    if not session.region_name:
        raise OperatorError(
            "no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)", EXIT_USAGE
        )
    return session


def resolve_state_machine_arn(session: boto3.Session, explicit: str | None, stack_name: str | None) -> str:
    """``--state-machine-arn`` (or its environment variable), else the stack's ``StateMachineArn`` output."""
    if explicit:
        if not _ARN.match(explicit) or ":stateMachine:" not in explicit:
            raise OperatorError(f"not a state machine ARN: {explicit!r}")
        return explicit
    if not stack_name:
        raise OperatorError(
            "which state machine? pass --state-machine-arn, "
            f"set {STATE_MACHINE_ARN_ENV}, or pass --stack-name"
        )
    with aws_errors():
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in stacks[0].get("Outputs", [])}
    if not outputs.get("StateMachineArn"):
        raise OperatorError(
            f"stack {stack_name} has no StateMachineArn output; is it a redis-migration stack?"
        )
    return str(outputs["StateMachineArn"])


def resolve_execution_arn(execution: str, state_machine_arn: str | None) -> str:
    """A full execution ARN as given, or an execution name resolved against the state machine."""
    if execution.startswith("arn:"):
        if not _ARN.match(execution) or ":execution:" not in execution:
            raise OperatorError(f"not an execution ARN: {execution!r}")
        return execution
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", execution):
        raise OperatorError(f"not an execution name or ARN: {execution!r}")
    if not state_machine_arn:
        raise OperatorError(
            f"execution {execution!r} is a name: pass its full ARN, or say which state machine with "
            f"--state-machine-arn, {STATE_MACHINE_ARN_ENV} or --stack-name"
        )
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + execution


def environment_of_state_machine(state_machine_arn: str) -> str | None:
    """The template names the state machine ``<project>-redis-migration-<environment>``."""
    name = state_machine_arn.rsplit(":", 1)[-1]
    head, separator, environment = name.rpartition("-redis-migration-")
    return environment if separator and head else None


def execution_name(*parts: str | None, now: datetime | None = None) -> str:
    """``<parts>-<UTC time>``: what started, for which environment and release, and when.

    Step Functions allows 80 characters of ``[A-Za-z0-9-_]``; the parts are cleaned and the
    longest is shortened so the timestamp always survives.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    cleaned = [_NAME_UNSAFE.sub("-", part).strip("-") for part in parts if part]
    cleaned = [part for part in cleaned if part]
    budget = MAX_EXECUTION_NAME - len(stamp) - len(cleaned)
    while sum(len(part) for part in cleaned) > budget:
        longest = max(range(len(cleaned)), key=lambda index: len(cleaned[index]))
        cleaned[longest] = cleaned[longest][: len(cleaned[longest]) - 1].rstrip("-") or "x"
    return "-".join([*cleaned, stamp])


def validated_input(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check a start input with the workflow's own model; answer it as the workflow will read it.

    The same pydantic model as ValidateInput, so a typo is refused here, before anything starts.
    """
    try:
        given = MigrationInput.model_validate(dict(raw))
    except ValidationError as error:
        raise OperatorError(f"invalid input: {describe_validation_error(error)}") from None
    return given.model_dump(mode="json", by_alias=True, exclude_unset=True)


# ---------------------------------------------------------------------------------------------
# Exit status of an execution.


def exit_code_of(described: Mapping[str, Any]) -> int:
    """0 succeeded; 2 input refused; 3 failed and rolled back (or refused, nothing changed); 4 RollbackFailed
    or DecommissionIncomplete (action needed); 1 anything else."""
    status = described.get("status")
    if status == "SUCCEEDED":
        return EXIT_MIGRATED
    if status == "FAILED":
        error = described.get("error")
        if error in ("RollbackFailed", DECOMMISSION_INCOMPLETE):
            return EXIT_ROLLBACK_FAILED
        return EXIT_USAGE if error in REFUSED_INPUT_ERRORS else EXIT_ROLLED_BACK
    return EXIT_UNEXPECTED


def outcome_of(described: Mapping[str, Any]) -> str:
    """One line saying what the end state means for the operator."""
    status = str(described.get("status"))
    output = parse_json(described.get("output"))
    if status == "SUCCEEDED":
        return {
            "planned": "dry run: nothing was changed",
            "migrated": "migrated: every function uses the new Redis",
            "rolledBack": "rolled back: every function is back on its recorded values",
            "decommissioned": "decommissioned: ElastiCache is deleted; its final snapshot stays",
        }.get(str((output or {}).get("outcome")) if isinstance(output, dict) else "", "succeeded")
    if status == "FAILED":
        if described.get("error") == "RollbackFailed":
            return "ROLLBACK FAILED: something is left to do by hand (see the cause)"
        if described.get("error") == DECOMMISSION_INCOMPLETE:
            return (
                "DECOMMISSION INCOMPLETE: part of ElastiCache is deleted; re-run it to finish (see the cause)"
            )
        if described.get("error") == "DecommissionRefused":
            return "decommission refused: nothing was changed (the cause names every reason)"
        return f"failed with {described.get('error')}; everything this run changed was put back"
    if status in _LIVE_STATUSES:
        return "still running"
    return (
        f"{status.lower()}: the run stopped where it was; check the functions (history shows how far it got)"
    )


# The Fail states through which the workflow ends on purpose. A run that failed anywhere else was
# stopped by something it could not catch (States.DataLimitExceeded, States.Runtime, a timeout):
# nothing rolled it back, so "as before" must be checked, not assumed.
WORKFLOW_FAIL_STATES = frozenset(
    {
        "InputRejected",
        "PreconditionsNotMet",
        "MigrationRolledBack",
        "RollbackFailed",
        *DECOMMISSION_FAIL_STATES,
    }
)


def ended_uncaught(history: list[Event]) -> bool:
    """Whether a FAILED run ended without entering one of the workflow's own Fail states."""
    fail_states = [
        str(event["stateEnteredEventDetails"]["name"])
        for event in history
        if event.get("type") == "FailStateEntered" and event.get("stateEnteredEventDetails")
    ]
    return not fail_states or fail_states[-1] not in WORKFLOW_FAIL_STATES


def check_as_before(session: boto3.Session, history: list[Event]) -> list[str]:
    """For a run that ended uncaught: every function of its plan and its rules, read now.

    Answers the differences from before the run (empty: everything is as it was). Raises
    OperatorError when the plan cannot be read (then nothing can be claimed).
    """
    plan = _plan_summary(history)
    if plan is None:
        return []  # it failed before a plan existed: it changed nothing
    record = plan["record"]
    with aws_errors():
        body = session.client("s3").get_object(Bucket=record["bucket"], Key=f"{record['prefix']}plan.json")
        document = json.loads(body["Body"].read())
        lambda_ = session.client("lambda")
        differences = []
        for function in document["functions"]:
            name = function["functionName"]
            variables = (
                lambda_.get_function_configuration(FunctionName=name)
                .get("Environment", {})
                .get("Variables", {})
            )
            now = {key: variables.get(key) for key in function["before"]}
            if now != function["before"]:
                differences.append(f"function {name}: {now} (before: {function['before']})")
        ingress = plan["ingress"]
        groups = session.client("ec2").describe_security_groups(GroupIds=[ingress["groupId"]])[
            "SecurityGroups"
        ]
        for permission in groups[0].get("IpPermissions", []):
            for pair in permission.get("UserIdGroupPairs", []):
                if pair.get("Description") == ingress["ruleDescription"]:
                    differences.append(
                        f"security group {ingress['groupId']}: rule from {pair['GroupId']} still there"
                    )
    return differences


def _plan_summary(history: list[Event]) -> dict[str, Any] | None:
    for event in reversed(history):
        details = event.get("taskSucceededEventDetails")
        if not details or details.get("resourceType") != "lambda":
            continue
        payload = parse_json(details.get("output"))
        payload = payload.get("Payload") if isinstance(payload, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("record"), dict) and "planSha256" in payload:
            return payload
        if (
            isinstance(payload, dict)
            and isinstance(payload.get("plan"), dict)
            and "record" in payload["plan"]
        ):
            return dict(payload["plan"])
    return None


def honest_exit_code(
    session: boto3.Session, described: Mapping[str, Any], history: list[Event]
) -> tuple[int, str]:
    """The exit code and outcome line, checked against the account when the run ended uncaught."""
    code, outcome = exit_code_of(described), outcome_of(described)
    if described.get("status") != "FAILED" or not ended_uncaught(history):
        return code, outcome
    if is_decommission(history):
        with aws_errors():
            differences = decommission_differences(session, history)
        if not differences:
            return EXIT_ROLLED_BACK, (
                f"failed with {described.get('error')}, which the workflow cannot catch; checked now: the "
                "replication group is intact, nothing was deleted"
            )
        return EXIT_ROLLBACK_FAILED, (
            f"failed with {described.get('error')}, which the workflow cannot catch, part way through the "
            f"decommission: {'; '.join(differences)}. Re-run the decommission to finish"
        )
    differences = check_as_before(session, history)
    if not differences:
        return EXIT_ROLLED_BACK, (
            f"failed with {described.get('error')}, which the workflow cannot catch; checked now: every "
            "function and rule of the plan is as before"
        )
    shown = "; ".join(differences[:10]) + (
        f" (and {len(differences) - 10} more)" if len(differences) > 10 else ""
    )
    return EXIT_UNEXPECTED, (
        f"failed with {described.get('error')}, which the workflow cannot catch, and NOT everything is as "
        f"before: {shown}. Re-run the migration (it completes it) or put these back by hand"
    )


def record_reader(session: boto3.Session) -> Callable[[Mapping[str, Any], str, str], Any]:
    """Reads a run's records from S3 for the audit report, each checked against its recorded digest."""
    aws = AwsClients(factory=session.client)

    def read(location: Mapping[str, Any], key: str, sha256: str) -> Any:
        return get_record(RecordLocation.model_validate(dict(location)), key, sha256, aws)

    return read


def full_plan(session: boto3.Session, plan: Mapping[str, Any]) -> dict[str, Any]:
    """A dry run's plan summary with every function, read from its record (digest checked)."""
    read = record_reader(session)
    with aws_errors():
        try:
            document = read(plan["record"], f"{plan['record']['prefix']}plan.json", str(plan["planSha256"]))
        except RecordUnreadable as error:
            raise OperatorError(str(error), EXIT_UNEXPECTED) from None
    return {**plan, "functions": document["functions"]}


# ---------------------------------------------------------------------------------------------
# Step Functions.


@dataclass
class StepFunctions:
    """The calls an operator makes, on one session."""

    session: boto3.Session

    def __post_init__(self) -> None:
        with aws_errors():
            self.client: SFNClient = self.session.client("stepfunctions")

    def describe(self, execution_arn: str) -> dict[str, Any]:
        with aws_errors():
            return dict(self.client.describe_execution(executionArn=execution_arn))

    def history(self, execution_arn: str) -> list[Event]:
        """Every event, oldest first."""
        events: list[Event] = []
        with aws_errors():
            paginator = self.client.get_paginator("get_execution_history")
            for page in paginator.paginate(executionArn=execution_arn, PaginationConfig={"PageSize": 1000}):
                events.extend(dict(event) for event in page["events"])
        return events

    def start(self, state_machine_arn: str, name: str, execution_input: Mapping[str, Any]) -> str:
        with aws_errors():
            response = self.client.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(dict(execution_input))
            )
        return str(response["executionArn"])

    def follow(
        self,
        execution_arn: str,
        on_event: OnEvent,
        *,
        timeout_s: float,
        interval_s: float,
        on_poll: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Report every history event once, as it appears, until the execution ends or the deadline;
        ``on_poll`` after each poll (a heartbeat while nothing new happens).

        Raises OperatorError (exit 1) when the deadline passes first: the execution goes on.
        """
        deadline = time.monotonic() + timeout_s
        seen: set[int] = set()
        while True:
            described = self.describe(execution_arn)
            for event in self.history(execution_arn):
                if event["id"] not in seen:
                    seen.add(event["id"])
                    on_event(event)
            if on_poll is not None:
                on_poll()
            if described["status"] not in _LIVE_STATUSES:
                return described
            if time.monotonic() >= deadline:
                raise OperatorError(
                    f"still running after {timeout_s:.0f} s; it goes on (watch it again, or see the console)",
                    EXIT_UNEXPECTED,
                )
            time.sleep(interval_s)

    def caller(self) -> str:
        """Who is answering (the IAM identity's ARN), recorded with the approval."""
        with aws_errors():
            return str(self.session.client("sts").get_caller_identity()["Arn"])

    def pending_approval_token(self, execution_arn: str) -> str:
        """The task token of the approval gate the execution is waiting at, or a clear refusal."""
        described = self.describe(execution_arn)
        if described["status"] not in _LIVE_STATUSES:
            raise OperatorError(
                f"execution {described['name']} is {described['status']}; "
                "there is nothing to approve or reject"
            )
        history = self.history(execution_arn)
        token = pending_task_token(history, APPROVAL_STATE) or pending_task_token(
            history, DECOMMISSION_APPROVAL_STATE
        )
        if token is None:
            raise OperatorError(
                f"execution {described['name']} is not waiting for approval (now: "
                f"{HistoryIndex(history).current_state() or 'starting'}); "
                "try again once `watch` shows WaitForApproval"
            )
        return token

    def approve(self, execution_arn: str, comment: str | None) -> dict[str, Any]:
        """Let the cutover go ahead; the answer (who, when, comment) is recorded in the history."""
        token = self.pending_approval_token(execution_arn)
        answer = {"decision": "approved", "by": self.caller(), "at": _now(), "comment": comment}
        with aws_errors():
            self.client.send_task_success(taskToken=token, output=json.dumps(answer))
        return answer

    def reject(self, execution_arn: str, reason: str) -> dict[str, Any]:
        """Stop before the cutover: WaitForApproval fails with ApprovalRejected and the run rolls back."""
        token = self.pending_approval_token(execution_arn)
        answer = {"decision": "rejected", "by": self.caller(), "at": _now(), "comment": reason}
        with aws_errors():
            self.client.send_task_failure(
                taskToken=token,
                error=APPROVAL_REJECTED,
                cause=f"rejected by {answer['by']}: {reason}"[:32768],
            )
        return answer


def pending_task_token(history: list[Event], state_name: str) -> str | None:
    """The token of ``state_name``'s latest ``.waitForTaskToken`` call, if nothing answered it yet.

    The token is in the TaskScheduled event's parameters: ``Message`` (a JSON string) → ``taskToken``.
    """
    message = pending_task_message(history, state_name)
    return str(message["taskToken"]) if message is not None else None


def rollback_input(described: Mapping[str, Any]) -> dict[str, Any]:
    """``{"rollbackOf": <execution ARN>}`` for a migration that succeeded; a clear refusal for anything else.

    The workflow reads the record itself (PrepareRollback: DescribeExecution and the records
    bucket); this check only spares the operator a run that would be refused.
    """
    refusal = not_a_succeeded_migration(
        described,
        why_succeeded="only a succeeded migration is rolled back this way (a failed one already rolled "
        "itself back; see `history`)",
        outcome_tail=", e.g. a dry run or a rollback); there is nothing to roll back",
    )
    if refusal:
        raise OperatorError(refusal)
    return {"rollbackOf": str(described["executionArn"])}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ProgressLines:
    """Turns history events, as they arrive, into the lines `watch` prints (None: nothing to say):
    each state entered, each failure, and the data steps' and the freeze's progress."""

    def __init__(self, execution_name: str) -> None:
        self.execution_name = execution_name
        self._events: dict[int, Event] = {}
        self._data = DataProgress()

    def __call__(self, event: Event) -> str | None:
        clock = _clock(event.get("timestamp"))
        state_line = self._state_line(event, clock)
        data_lines = [f"{clock}    {line}" for line in self._data(event)]
        lines = ([state_line] if state_line is not None else []) + data_lines
        return "\n".join(lines) if lines else None

    def tick(self, now: datetime | None = None) -> str | None:
        """Between events: a line when a data slice has run quietly for a while (see DataProgress)."""
        moment = now or datetime.now(UTC)
        line = self._data.heartbeat(moment)
        return f"{moment:%H:%M:%S}    … {line}" if line is not None else None

    def _state_line(self, event: Event, clock: str) -> str | None:
        self._events[int(event["id"])] = event
        entered = event.get("stateEnteredEventDetails")
        if entered and str(event["type"]).endswith("StateEntered"):
            document = parse_json(entered.get("input"))
            item = _item_label(document)
            line = f"{clock}  → {entered['name']}" + (f"  {item}" if isinstance(item, str) else "")
            if entered["name"] == APPROVAL_STATE:
                line += (
                    f"\n{clock}    waiting for approval: redis-migration approve {self.execution_name}"
                    f"  (or: reject {self.execution_name} --reason ...)"
                )
            return line
        kind = str(event["type"])
        if kind.startswith("Execution") or not kind.endswith(("Failed", "TimedOut")):
            return None
        details = next(
            (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {}
        )
        state = self._owning_state(event)
        cause = str(details.get("cause") or "")
        return f"{clock}    ✗ {state}: {details.get('error') or kind}" + (f": {cause[:240]}" if cause else "")

    def _owning_state(self, event: Event) -> str:
        previous = self._events.get(int(event.get("previousEventId") or 0))
        while previous is not None:
            details = previous.get("stateEnteredEventDetails")
            if details:
                return str(details["name"])
            previous = self._events.get(int(previous.get("previousEventId") or 0))
        return "?"


def _item_label(document: Any) -> str | None:
    """What a Map iteration works on: its batch's label (the first function, and how many more)."""
    if not isinstance(document, dict):
        return None
    batch = document.get("batch")
    if isinstance(batch, dict) and isinstance(batch.get("label"), str):
        return str(batch["label"])
    item = document.get("functionName")
    return item if isinstance(item, str) else None


def _clock(timestamp: Any) -> str:
    if isinstance(timestamp, datetime):
        return timestamp.astimezone(UTC).strftime("%H:%M:%S")
    return str(timestamp or "")[11:19]
