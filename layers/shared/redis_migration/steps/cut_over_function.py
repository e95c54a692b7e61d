"""CutOverFunction, VerifyCutover and the compensation RestoreFunction.

Only the managed keys change; every other variable is written back exactly as read. Each
write carries the RevisionId read just before it, so a concurrent change makes the step fail
instead of overwriting, and each write is followed by a wait until Lambda reports the update
finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import WaiterError

if TYPE_CHECKING:
    from mypy_boto3_lambda.type_defs import WaiterConfigTypeDef

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.errors import (
    CutoverVerificationFailed,
    FunctionChangedConcurrently,
    FunctionUpdateFailed,
    TransientError,
)
from redis_migration.models import (
    CutoverOutput,
    FunctionChange,
    ManagedValues,
    RestoreOutput,
    VerifyInput,
    VerifyOutput,
)

# Polling of the function_updated_v2 waiter: every 2 s, for at most 4 minutes, well inside
# the function's 300 s timeout (itself inside the task's 330 s), so no write outlives its step.
UPDATE_WAIT: WaiterConfigTypeDef = {"Delay": 2, "MaxAttempts": 120}


def cut_over_function(change: FunctionChange, aws: AwsClients) -> CutoverOutput:
    """Set the function's managed keys to the target; refuse if they moved since the plan."""
    with aws_errors_as_transient():
        config = aws.lambda_.get_function_configuration(FunctionName=change.function_name)
        variables = _variables(config)
        current = {key: variables.get(key) for key in change.target}
        if current == change.target:
            return CutoverOutput(
                function_name=change.function_name, changed=False, revision_id=config.get("RevisionId")
            )
        moved = sorted(key for key in change.target if current[key] != change.before.get(key))
        if moved:
            raise FunctionChangedConcurrently(
                f"{change.function_name}: {', '.join(moved)} changed since the plan was made; not overwriting"
            )
        revision = write_variables(change.function_name, variables, change.target, config, aws)
    return CutoverOutput(function_name=change.function_name, changed=True, revision_id=revision)


def restore_function(change: FunctionChange, aws: AwsClients) -> RestoreOutput:
    """Put back the values from before, only where the function still has this run's values."""
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
        variables = _variables(config)
        current = {key: variables.get(key) for key in change.target}
        if current == change.before:
            return RestoreOutput(function_name=name, outcome="unchanged", detail="already as before")
        foreign = sorted(
            key for key in change.target if current[key] not in (change.target[key], change.before.get(key))
        )
        if foreign:
            detail = ", ".join(f"{key}={current[key]!r}" for key in foreign)
            return RestoreOutput(
                function_name=name,
                outcome="changedByOthers",
                detail=f"changed by someone else since the cutover, left as is: {detail}",
            )
        restore = {key: change.before.get(key) for key in change.target}
        write_variables(name, variables, restore, config, aws)
    return RestoreOutput(function_name=name, outcome="restored", detail="managed keys restored")


def verify_cutover(given: VerifyInput, aws: AwsClients) -> VerifyOutput:
    """Every function carries the target values and its last update succeeded."""
    problems = []
    with aws_errors_as_transient():
        for name in given.function_names:
            config = aws.lambda_.get_function_configuration(FunctionName=name)
            variables = _variables(config)
            wrong = sorted(key for key in given.target if variables.get(key) != given.target[key])
            if wrong:
                problems.append(f"{name}: {', '.join(wrong)} not as written")
            status = config.get("LastUpdateStatus", "Successful")
            if status != "Successful":
                problems.append(f"{name}: last update {status}")
    if problems:
        raise CutoverVerificationFailed("; ".join(problems))
    return VerifyOutput(verified_functions=list(given.function_names))


def write_variables(
    name: str,
    variables: dict[str, str],
    values: ManagedValues,
    config: Any,
    aws: AwsClients,
) -> str | None:
    """Merge ``values`` into ``variables`` (None removes a key), write with RevisionId, wait."""
    merged = dict(variables)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
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


def _variables(config: Any) -> dict[str, str]:
    return dict(config.get("Environment", {}).get("Variables", {}))
