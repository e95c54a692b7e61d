"""FreezeWriters and its compensations UnfreezeWriters / RestoreWriterConcurrency (consistent mode).

Reserved concurrency 0 throttles a function: asynchronous events are retried for up to 6 hours,
queue pollers stop (their messages stay), synchronous callers get 429; invocations already
running finish. While every writer is frozen, what is copied from ElastiCache is what clients
wrote, and nothing is written behind the copy's back.

Each function's reserved concurrency before the freeze (a number, or none) is written to the
run's records *before* it is changed, so a retry never mistakes our own 0 for the value before,
and the way back puts exactly that value back: the number, or no reservation at all. The way back
only touches a function that still has the 0 we set; one changed by someone else is named.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.errors import ConcurrencyRefused, UnfreezeFailed
from redis_migration.models import BatchRequest, Model
from redis_migration.records import find_record, put_record, read_batch, results_key
from redis_migration.steps.cut_over_function import NAMED_FAILURES, for_each


class FreezeOutcome(Model):
    index: int
    frozen: int
    record_key: str
    record_sha256: str


class UnfreezeOutcome(Model):
    index: int
    restored: int
    unchanged: int
    # Functions whose concurrency someone else changed since the freeze (left as they are).
    changed_by_others: list[str]


def reserved_concurrency(name: str, aws: AwsClients) -> int | None:
    """The function's reserved concurrency, or None when it has none."""
    answer = aws.lambda_.get_function_concurrency(FunctionName=name)
    value = answer.get("ReservedConcurrentExecutions")
    return None if value is None else int(value)


def freeze_batch(given: BatchRequest, aws: AwsClients) -> FreezeOutcome:
    """Record each function's reserved concurrency, then set it to 0."""
    key = results_key(given.record, "freeze", given.batch.index)
    with aws_errors_as_transient():
        functions = [function.function_name for function in read_batch(given.record, given.batch, aws)]
        earlier = find_record(given.record, key, aws) or []
        previous: dict[str, int | None] = {row["functionName"]: row["previous"] for row in earlier}
        for name in functions:
            if name not in previous:
                previous[name] = reserved_concurrency(name, aws)
        rows = [{"functionName": name, "previous": previous[name]} for name in functions]
        digest = put_record(given.record, key, rows, aws)
    for_each(functions, lambda name: _put(name, 0, aws))
    return FreezeOutcome(index=given.batch.index, frozen=len(functions), record_key=key, record_sha256=digest)


def unfreeze_batch(given: BatchRequest, aws: AwsClients) -> UnfreezeOutcome:
    """Put back each function's recorded concurrency where it still has the 0 the freeze set."""
    key = results_key(given.record, "freeze", given.batch.index)
    with aws_errors_as_transient():
        functions = {function.function_name for function in read_batch(given.record, given.batch, aws)}
        rows = find_record(given.record, key, aws) or []  # no record: this batch was never frozen
    recorded = {row["functionName"]: row["previous"] for row in rows if row["functionName"] in functions}

    def thaw(name: str) -> str:
        with aws_errors_as_transient():
            current = reserved_concurrency(name, aws)
            if current == recorded[name]:
                return "unchanged"
            if current != 0:
                return "changedByOthers"
            if recorded[name] is None:
                aws.lambda_.delete_function_concurrency(FunctionName=name)
            else:
                _put(name, int(recorded[name]), aws)
        return "restored"

    names = sorted(recorded)
    outcomes = for_each(names, thaw)
    failed = [name for name, outcome in zip(names, outcomes, strict=True) if not isinstance(outcome, str)]
    if failed:
        first = next(outcome for outcome in outcomes if not isinstance(outcome, str))
        raise UnfreezeFailed(
            f"{len(failed)} function(s) not unfrozen, e.g. {failed[:NAMED_FAILURES]}: {first}"
        )
    return UnfreezeOutcome(
        index=given.batch.index,
        restored=outcomes.count("restored"),
        unchanged=outcomes.count("unchanged"),
        changed_by_others=[
            name for name, outcome in zip(names, outcomes, strict=True) if outcome == "changedByOthers"
        ],
    )


def _put(name: str, value: int, aws: AwsClients) -> None:
    with aws_errors_as_transient():
        try:
            aws.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=value)
        except Exception as error:
            if error_code(error) == "InvalidParameterValueException":
                # AWS keeps 100 (or the account's minimum) unreserved: name it, do not guess.
                raise ConcurrencyRefused(f"{name}: reserved concurrency {value} refused: {error}") from None
            raise
