"""CutOverFunction, VerifyCutover and the compensations RestoreFunction and VerifyFunctionsRestored.

Only the managed keys change; every other variable is written back exactly as read. Each
write carries the RevisionId read just before it, so a concurrent change makes the step fail
instead of overwriting, and each write is followed by a wait until Lambda reports the update
finished.

The Map states hand each iteration one batch file of the plan (see records.py): one function up
to 100 functions, more above, so 2,000 functions stay within Step Functions' history and payload
limits. An iteration switches its functions a few at a time, and writes what it did per
function back to the records bucket; its output is a handful of counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import WaiterError

if TYPE_CHECKING:
    from mypy_boto3_lambda.type_defs import WaiterConfigTypeDef

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.clients.aliases import (
    alias_cutover_problems,
    aliases_not_restored,
    check_aliases_as_planned,
    move_aliases_back,
    move_aliases_forward,
)
from redis_migration.clients.environment import function_variables, merge_variables
from redis_migration.errors import (
    CutoverVerificationFailed,
    FunctionChangedConcurrently,
    FunctionUpdateFailed,
    InvalidInput,
    TransientError,
)
from redis_migration.models import (
    REDIS_HOST,
    REDIS_PASSWORD_SECRET_ARN,
    REDIS_PORT,
    BatchOutcome,
    BatchRequest,
    CutoverOutput,
    FunctionChange,
    FunctionFailure,
    FunctionPlan,
    ManagedValues,
    RestoreBatchOutcome,
    RestoreCheck,
    RestoreCheckInput,
    RestoreOutcome,
    RestoreOutput,
    VerifyInput,
    VerifyOutput,
)
from redis_migration.records import put_record, read_batch, read_plan, results_key

# Polling of the function_updated_v2 waiter: every 2 s, for at most 4 minutes, well inside
# the function's 300 s timeout (itself inside the task's 330 s), so no write outlives its step.
UPDATE_WAIT: WaiterConfigTypeDef = {"Delay": 2, "MaxAttempts": 120}
# Functions of one batch switched at the same time. With CutoverConcurrency iterations at once
# this bounds the calls on Lambda's control plane (its per-account request rates are low).
BATCH_THREADS = 4
# Failures named in a state's output, and how much of each cause: the Map's output is 100 of these
# at 2,000 functions and must stay far below 256 KiB even when every batch fails (the rest of each
# failure is in the batch's results record).
NAMED_FAILURES = 1
CAUSE_CHARACTERS = 300
# Leftovers named in the rollback's output (the rest are in the records bucket).
NAMED_LEFTOVERS = 20

T = TypeVar("T")


def cut_over_batch(given: BatchRequest, aws: AwsClients) -> BatchOutcome:
    """Switch every function of one batch file; per-function results go to the records bucket."""
    if given.target is None:
        raise InvalidInput("BatchRequest: target is required for a cutover")
    target = given.target
    with aws_errors_as_transient():
        functions = read_batch(given.record, given.batch, aws)
    # Each function gets its own values: its variables that name the cache, in their form.
    results = for_each(
        functions,
        lambda function: cut_over_function(
            FunctionChange(
                function_name=function.function_name,
                before=function.before,
                target=function.values_after(target),
                aliases=function.aliases,
            ),
            aws,
        ),
    )
    rows: list[dict[str, object]] = []
    failures: list[FunctionFailure] = []
    changed = unchanged = 0
    for function, result in zip(functions, results, strict=True):
        if isinstance(result, CutoverOutput):
            changed += result.changed
            unchanged += not result.changed
            row: dict[str, object] = {
                "functionName": function.function_name,
                "outcome": "changed" if result.changed else "unchanged",
            }
            if result.aliases:
                # Old version -> new version per alias: what a restore (now or days later) undoes.
                row["aliases"] = [move.to_json_dict() for move in result.aliases]
            rows.append(row)
        else:
            failure = FunctionFailure(
                function_name=function.function_name, error=_error_name(result), cause=str(result)
            )
            failures.append(failure)
            rows.append(
                {"functionName": function.function_name, "outcome": "failed", **failure.to_json_dict()}
            )
    key = results_key(given.record, "cutover", given.batch.index)
    with aws_errors_as_transient():
        digest = put_record(given.record, key, rows, aws)
    return BatchOutcome(
        index=given.batch.index,
        changed=changed,
        unchanged=unchanged,
        failed=len(failures),
        failures=[
            failure.model_copy(update={"cause": failure.cause[:CAUSE_CHARACTERS]})
            for failure in failures[:NAMED_FAILURES]
        ],
        results_key=key,
        results_sha256=digest,
    )


def restore_batch(given: BatchRequest, aws: AwsClients) -> RestoreBatchOutcome:
    """Put back every function of one batch file where it still holds the values the run wrote."""
    with aws_errors_as_transient():
        functions = read_batch(given.record, given.batch, aws)
    changes = [_restore_change(function, given.target) for function in functions]
    results = for_each(changes, lambda change: restore_function(change, aws))
    outputs = [
        result
        if isinstance(result, RestoreOutput)
        else RestoreOutput(
            function_name=change.function_name,
            outcome="failed",
            detail=f"{_error_name(result)}: {str(result)[:300]}; values to put back: {change.before}",
        )
        for change, result in zip(changes, results, strict=True)
    ]
    key = results_key(given.record, "restore", given.batch.index)
    with aws_errors_as_transient():
        digest = put_record(given.record, key, [output.to_json_dict() for output in outputs], aws)
    not_restored = [output for output in outputs if output.outcome in ("changedByOthers", "failed")]
    return RestoreBatchOutcome(
        index=given.batch.index,
        restored=sum(output.outcome == "restored" for output in outputs),
        unchanged=sum(output.outcome == "unchanged" for output in outputs),
        changed_by_others=sum(output.outcome == "changedByOthers" for output in outputs),
        not_restored=[
            output.model_copy(update={"detail": output.detail[:CAUSE_CHARACTERS]})
            for output in not_restored[:NAMED_FAILURES]
        ],
        results_key=key,
        results_sha256=digest,
    )


def _restore_change(function: FunctionPlan, run_target: ManagedValues | None) -> FunctionChange:
    if function.target is None and run_target is None:
        raise InvalidInput(f"BatchRequest: no target for {function.function_name}")
    target = function.values_after(run_target or {})
    # Keys of the target the run did not know yet (the secret ARN of a first run that failed
    # before the secret existed) cannot have been written: expect them as they were before.
    expected = {
        key: value if value is not None or key not in function.before else None
        for key, value in target.items()
    }
    return FunctionChange(
        function_name=function.function_name,
        before=function.before,
        target=expected,
        aliases=function.aliases,
    )


def for_each(items: Sequence[T], action: Callable[[T], object]) -> list[object]:
    """``action`` on every item, BATCH_THREADS at a time; each item's exception is its result.

    A transient failure of any item is raised after all items ran: the state machine retries the
    whole batch, and the items already done are found done (every action is idempotent).
    """

    def guarded(item: T) -> object:
        try:
            return action(item)
        except Exception as error:  # one function's failure must not stop the others
            return error

    with ThreadPoolExecutor(max_workers=min(BATCH_THREADS, max(1, len(items)))) as pool:
        results = list(pool.map(guarded, items))
    transient = [result for result in results if isinstance(result, TransientError)]
    if transient:
        raise TransientError(f"{len(transient)} of {len(items)} functions: {transient[0]}")
    return results


def _error_name(error: object) -> str:
    return error_code(error) if isinstance(error, Exception) and error_code(error) else type(error).__name__


def cut_over_function(change: FunctionChange, aws: AwsClients) -> CutoverOutput:
    """Set the function's managed keys to the target; refuse if they moved since the plan.

    Then each planned alias is moved to a version published from the updated ``$LATEST``.
    """
    with aws_errors_as_transient():
        config = aws.lambda_.get_function_configuration(FunctionName=change.function_name)
        variables = function_variables(config)
        current = {key: variables.get(key) for key in change.target}
        revision: str | None = config.get("RevisionId")
        changed = current != change.target
        # An alias moved by someone since the plan stops the switch before anything is written.
        check_aliases_as_planned(change.function_name, change.aliases, change.target, function_variables, aws)
        if changed:
            moved = sorted(key for key in change.target if current[key] != change.before.get(key))
            if moved:
                raise FunctionChangedConcurrently(
                    f"{change.function_name}: {', '.join(moved)} changed since the plan was made; "
                    "not overwriting"
                )
            revision = write_variables(change.function_name, variables, change.target, config, aws)
        moves = move_aliases_forward(
            change.function_name, change.aliases, change.target, function_variables, aws
        )
    return CutoverOutput(
        function_name=change.function_name,
        changed=changed or any(move.moved for move in moves),
        revision_id=revision,
        aliases=moves,
    )


def restore_function(change: FunctionChange, aws: AwsClients) -> RestoreOutput:
    """Put back the values from before, variable by variable, only where the function still holds
    the value this run wrote; a variable someone else changed since is left as is and named."""
    name = change.function_name
    with aws_errors_as_transient():
        try:
            config = aws.lambda_.get_function_configuration(FunctionName=name)
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return RestoreOutput(
                function_name=name, outcome="changedByOthers", detail="the function no longer exists"
            )
        variables = function_variables(config)
        current = {key: variables.get(key) for key in change.target}
        foreign = sorted(
            key for key in change.target if current[key] not in (change.target[key], change.before.get(key))
        )
        # The variables still holding what this run wrote go back; the others are left alone.
        restore = {
            key: change.before.get(key)
            for key in change.target
            if key not in foreign and current[key] != change.before.get(key)
        }
        if restore:
            write_variables(name, variables, restore, config, aws)
        outcome: RestoreOutcome
        if foreign:
            outcome = "changedByOthers"
            detail = "changed by someone else since the cutover, left as is: " + ", ".join(
                f"{key}={current[key]!r}" for key in foreign
            )
            if restore:
                detail += f"; put back: {', '.join(restore)}"
        elif restore:
            outcome, detail = "restored", f"put back: {', '.join(restore)}"
        else:
            outcome, detail = "unchanged", "already as before"
        # Aliases go back to the versions they served (immutable, so exactly as before).
        aliases = move_aliases_back(name, change.aliases, change.target, function_variables, aws)
    if not aliases:
        return RestoreOutput(function_name=name, outcome=outcome, detail=detail)
    outcomes = [outcome, *(result for result, _ in aliases)]
    combined: RestoreOutcome = next(
        (kind for kind in ("changedByOthers", "restored") if kind in outcomes), "unchanged"
    )
    details = "; ".join([f"$LATEST: {detail}", *(text for _, text in aliases)])
    return RestoreOutput(function_name=name, outcome=combined, detail=details)


def verify_cutover(given: VerifyInput, aws: AwsClients) -> VerifyOutput:
    """Every function of the plan carries the target values and its last update succeeded."""
    with aws_errors_as_transient():
        plan = read_plan(given.record, given.plan_sha256, aws)
    # With canary waves only the waves switched so far: the plan's first functionsThrough.
    names = [function.function_name for function in plan.functions][: given.functions_through]

    def check(name: str) -> list[str]:
        with aws_errors_as_transient():
            config = aws.lambda_.get_function_configuration(FunctionName=name)
        variables = function_variables(config)
        target = targets[name]
        problems = [f"{name}: {key} not as written" for key in target if variables.get(key) != target[key]]
        status = config.get("LastUpdateStatus", "Successful")
        if status != "Successful":
            problems.append(f"{name}: last update {status}")
        with aws_errors_as_transient():
            # What each alias serves is what its callers get: $LATEST alone proves nothing for them.
            problems += alias_cutover_problems(name, aliases[name], target, function_variables, aws)
        return problems

    aliases = {function.function_name: function.aliases for function in plan.functions}
    targets = {function.function_name: function.values_after(given.target) for function in plan.functions}
    results = for_each(names, check)
    problems = [
        line
        for name, result in zip(names, results, strict=True)
        for line in (result if isinstance(result, list) else [f"{name}: {_error_name(result)}: {result}"])
    ]
    if problems:
        more = f" (and {len(problems) - NAMED_LEFTOVERS} more)" if len(problems) > NAMED_LEFTOVERS else ""
        raise CutoverVerificationFailed("; ".join(problems[:NAMED_LEFTOVERS]) + more)
    return VerifyOutput(verified=len(names))


def verify_functions_restored(given: RestoreCheckInput, aws: AwsClients) -> RestoreCheck:
    """Read every function of the plan after the restore: as before, or named with what is left.

    This is what the rollback's outcome rests on: not on what the restore steps reported, but on
    each function as Lambda reports it now.
    """
    with aws_errors_as_transient():
        plan = read_plan(given.record, given.plan_sha256, aws)

    def check(function: FunctionPlan) -> str | None:
        name = function.function_name
        with aws_errors_as_transient():
            try:
                config = aws.lambda_.get_function_configuration(FunctionName=name)
            except Exception as error:
                if error_code(error) == "ResourceNotFoundException":
                    return f"function {name}: no longer exists; nothing to put back"
                raise
        variables = function_variables(config)
        current = {key: variables.get(key) for key in function.before}
        switched = switched_values(function, plan.target, given.self_hosted_host)
        with aws_errors_as_transient():
            alias_lines = aliases_not_restored(name, function.aliases, switched, function_variables, aws)
        if current == function.before:
            return "; ".join(alias_lines) or None
        where = (
            "still on the self-hosted Redis"
            if any(current.get(key) == value for key, value in switched.items())
            else ("changed by someone else since the cutover")
        )
        differing = {key: current[key] for key in function.before if current[key] != function.before[key]}
        return "; ".join(
            [f"function {name}: {where} (now {differing}); put back {function.before}", *alias_lines]
        )

    results = for_each(plan.functions, check)
    lines = [
        result
        if isinstance(result, str)
        else f"function {function.function_name}: could not be read ({_error_name(result)}: {result})"
        for function, result in zip(plan.functions, results, strict=True)
        if result is not None
    ]
    still = sum("still on the self-hosted Redis" in line for line in lines)
    key = None
    if lines:
        key = results_key(given.record, "restore-check", 0)
        with aws_errors_as_transient():
            put_record(given.record, key, lines, aws)
    return RestoreCheck(
        checked=len(plan.functions),
        as_before=len(plan.functions) - len(lines),
        still_on_self_hosted=still,
        other_differences=len(lines) - still,
        leftovers=lines[:NAMED_LEFTOVERS]
        + (
            [f"... and {len(lines) - NAMED_LEFTOVERS} more: s3://{given.record.bucket}/{key}"]
            if len(lines) > NAMED_LEFTOVERS
            else []
        ),
        leftovers_key=key,
    )


def switched_values(
    function: FunctionPlan, run_target: ManagedValues, self_hosted_host: str
) -> dict[str, str]:
    """The values that point a function at the self-hosted Redis (what tells "still switched" from
    "changed by someone else"): those its switch wrote where they differ from before, apart from
    the secret's ARN and the port, which name no host."""
    if function.target is None and function.rewrites is None:
        return {REDIS_HOST: self_hosted_host}  # a plan from before per-function values
    return {
        key: value
        for key, value in function.values_after(run_target).items()
        if value is not None
        and key not in (REDIS_PASSWORD_SECRET_ARN, REDIS_PORT)
        and value != function.before.get(key)
    }


def write_variables(
    name: str,
    variables: dict[str, str],
    values: ManagedValues,
    config: Any,
    aws: AwsClients,
) -> str | None:
    """Merge ``values`` into ``variables`` (None removes a key), write with RevisionId, wait."""
    merged = merge_variables(variables, values)
    try:
        updated = aws.lambda_.update_function_configuration(
            FunctionName=name,
            Environment={"Variables": merged},
            RevisionId=config["RevisionId"],
        )
    except Exception as error:
        if error_code(error) == "PreconditionFailedException":
            raise FunctionChangedConcurrently(
                f"{name}: its configuration changed while we were writing (RevisionId); not overwriting"
            ) from None
        raise
    wait_until_updated(name, aws)
    return updated.get("RevisionId")


def wait_until_updated(name: str, aws: AwsClients) -> None:
    """Wait until Lambda reports the configuration update finished (LastUpdateStatus)."""
    try:
        aws.lambda_.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=UPDATE_WAIT)
    except WaiterError as error:
        last = getattr(error, "last_response", {}) or {}
        status = last.get("Configuration", {}).get("LastUpdateStatus")
        if status == "Failed":
            reason = last.get("Configuration", {}).get("LastUpdateStatusReason", "")
            raise FunctionUpdateFailed(f"{name}: update failed: {reason}") from None
        raise TransientError(f"{name}: update not finished: {error}") from None
