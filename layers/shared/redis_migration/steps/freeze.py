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
from redis_migration.clients.endpoints import CacheNames, uses_cache
from redis_migration.errors import ConcurrencyRefused, FreezeFailed, UnfreezeFailed
from redis_migration.models import BatchRequest, Model, PlanBatch, RecordLocation
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
    # A rollback's thaw: functions still on the self-hosted Redis, kept at reserved concurrency 0.
    kept_frozen: list[str] = []


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
    outcomes = for_each(functions, lambda name: _put(name, 0, aws))
    failed = [
        name for name, outcome in zip(functions, outcomes, strict=True) if isinstance(outcome, Exception)
    ]
    if failed:
        # A function that could not be frozen still writes: the batch failed, and the way back
        # (which reads the record written above) puts back the ones that were.
        first = next(outcome for outcome in outcomes if isinstance(outcome, Exception))
        raise FreezeFailed(f"{len(failed)} function(s) not frozen, e.g. {failed[:NAMED_FAILURES]}: {first}")
    return FreezeOutcome(index=given.batch.index, frozen=len(functions), record_key=key, record_sha256=digest)


def unfreeze_batch(given: BatchRequest, aws: AwsClients) -> UnfreezeOutcome:
    """Put back each function's recorded concurrency where it still has the 0 the freeze set."""
    key = results_key(given.record, "freeze", given.batch.index)
    with aws_errors_as_transient():
        functions = {function.function_name for function in read_batch(given.record, given.batch, aws)}
        rows = find_record(given.record, key, aws) or []  # no record: this batch was never frozen
    recorded = {row["functionName"]: row["previous"] for row in rows if row["functionName"] in functions}

    still_there = CacheNames.of([given.keep_frozen_on]) if given.keep_frozen_on else None

    def thaw(name: str) -> str:
        with aws_errors_as_transient():
            current = reserved_concurrency(name, aws)
            if current == recorded[name]:
                return "unchanged"
            if current != 0:
                return "changedByOthers"
            if still_there is not None:
                config = aws.lambda_.get_function_configuration(FunctionName=name)
                if uses_cache((config.get("Environment") or {}).get("Variables") or {}, still_there):
                    return "keptFrozen"  # its restore failed: thawed, it would write there
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
        kept_frozen=[name for name, outcome in zip(names, outcomes, strict=True) if outcome == "keptFrozen"],
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


class ThawCheckInput(Model):
    record: RecordLocation
    batches: list[PlanBatch]
    # The self-hosted Redis: a function still naming it was kept frozen on purpose.
    self_hosted_host: str | None = None


class ThawCheck(Model):
    """Every frozen function's reserved concurrency as Lambda reports it now, after the way back."""

    checked: int
    # One line each, for the rollback's list of what is left to do.
    leftovers: list[str]


def verify_writers_thawed(given: ThawCheckInput, aws: AwsClients) -> ThawCheck:
    """Compare each function's reserved concurrency with the value recorded before the freeze.

    Only what differs is named (a batch whose thaw failed but whose functions already have their
    value is not); a function kept frozen because it still names the self-hosted Redis is named
    with what to do first.
    """
    recorded: dict[str, int | None] = {}
    with aws_errors_as_transient():
        for batch in given.batches:
            rows = find_record(given.record, results_key(given.record, "freeze", batch.index), aws) or []
            recorded.update({row["functionName"]: row["previous"] for row in rows})
    still_there = CacheNames.of([given.self_hosted_host]) if given.self_hosted_host else None
    freeze_records = f"s3://{given.record.bucket}/{given.record.prefix}results/freeze-*.json"

    def check(name: str) -> str | None:
        with aws_errors_as_transient():
            current = reserved_concurrency(name, aws)
            if current == recorded[name]:
                return None
            wanted = "none" if recorded[name] is None else str(recorded[name])
            if current == 0 and still_there is not None:
                config = aws.lambda_.get_function_configuration(FunctionName=name)
                if uses_cache((config.get("Environment") or {}).get("Variables") or {}, still_there):
                    return (
                        f"function {name}: still points to the self-hosted Redis {given.self_hosted_host}, "
                        "so it stays frozen (reserved concurrency 0) rather than write there: put its "
                        "variables back (see the restore above), then its reserved concurrency "
                        f"({wanted}, in {freeze_records})"
                    )
        return (
            f"function {name}: reserved concurrency is {'none' if current is None else current}, not the "
            f"{wanted} recorded before the freeze ({freeze_records}); put it back"
        )

    names = sorted(recorded)
    outcomes = for_each(names, check)
    leftovers = [
        outcome
        if isinstance(outcome, str)
        else f"function {name}: its reserved concurrency could not be read ({outcome})"
        for name, outcome in zip(names, outcomes, strict=True)
        if outcome is not None
    ]
    return ThawCheck(checked=len(names), leftovers=leftovers)
