"""FreezeWriters and its compensations UnfreezeWriters / RestoreWriterConcurrency (consistent mode).

Reserved concurrency 0 throttles a function: synchronous callers get 429, asynchronous events are
retried for up to their maximum event age (6 hours by default; CheckData refuses a shorter one
the freeze would outlast); invocations already running finish. It does *not* stop an event source
mapping: Lambda keeps polling, throttled SQS messages return after the visibility timeout and go
to the dead-letter queue after ``maxReceiveCount`` receives. So each writer's event source
mappings are disabled first (``redis_migration.clients.event_sources``) and enabled again after.
While every writer is frozen, what is copied from ElastiCache is what clients wrote, and nothing
is written behind the copy's back.

Each function's reserved concurrency before the freeze (a number, or none) and its mappings'
states are written to the run's records *before* anything is changed, so a retry never mistakes
our own 0 (or our disabled mapping) for the state before, and the way back puts exactly that back:
the number, or no reservation at all, and the mappings that were enabled. The way back only
touches a function that still has the 0 we set; one changed by someone else is named.

Lambda refuses reserved concurrency 0 on a function with provisioned concurrency ("
ReservedConcurrentExecutions 0 should not be lower than function's total provisioned concurrency
[N].", https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html): CheckData
refuses such a writer before anything changes; should one appear after, its refusal is named as such.
"""

from __future__ import annotations

from typing import Any

from redis_migration.aws import AwsClients, aws_errors_as_transient, error_code
from redis_migration.clients.endpoints import CacheNames, uses_cache
from redis_migration.clients.event_sources import (
    disable_mappings,
    mapping_leftovers,
    mappings_of,
    restore_mappings,
)
from redis_migration.errors import ConcurrencyRefused, FreezeFailed, UnfreezeFailed
from redis_migration.models import BatchRequest, Model, PlanBatch, RecordLocation
from redis_migration.records import find_record, put_record, read_batch, results_key
from redis_migration.steps.cut_over_function import NAMED_FAILURES, for_each


class FreezeOutcome(Model):
    index: int
    frozen: int
    record_key: str
    record_sha256: str
    # Event source mappings disabled for the freeze (they would poll a frozen function).
    mappings_disabled: int = 0


class UnfreezeOutcome(Model):
    index: int
    restored: int
    unchanged: int
    # Functions whose concurrency someone else changed since the freeze (left as they are).
    changed_by_others: list[str]
    # A rollback's thaw: functions still on the self-hosted Redis, kept at reserved concurrency 0.
    kept_frozen: list[str] = []
    # Event source mappings enabled again, and those someone else changed since the freeze (named).
    mappings_enabled: int = 0
    mappings_changed_by_others: list[str] = []


def reserved_concurrency(name: str, aws: AwsClients) -> int | None:
    """The function's reserved concurrency, or None when it has none."""
    answer = aws.lambda_.get_function_concurrency(FunctionName=name)
    value = answer.get("ReservedConcurrentExecutions")
    return None if value is None else int(value)


def freeze_batch(given: BatchRequest, aws: AwsClients) -> FreezeOutcome:
    """Record each function's reserved concurrency and event source mappings, then disable the
    mappings and set the concurrency to 0."""
    key = results_key(given.record, "freeze", given.batch.index)
    with aws_errors_as_transient():
        functions = [function.function_name for function in read_batch(given.record, given.batch, aws)]
        earlier = find_record(given.record, key, aws) or []
        previous: dict[str, int | None] = {row["functionName"]: row["previous"] for row in earlier}
        for name in functions:
            if name not in previous:
                previous[name] = reserved_concurrency(name, aws)
        # A mapping's state before the first freeze stays recorded (a retry, or a rollback's
        # refreeze, sees our own Disabled); a mapping created since is recorded as it is now.
        mappings: dict[str, list[dict[str, Any]]] = {
            row["functionName"]: list(row.get("eventSourceMappings") or []) for row in earlier
        }
        for name, found in mappings_of(functions, aws).items():
            known = {mapping["uuid"] for mapping in mappings.setdefault(name, [])}
            mappings[name] += [mapping for mapping in found if mapping["uuid"] not in known]
        rows = [
            {"functionName": name, "previous": previous[name], "eventSourceMappings": mappings.get(name, [])}
            for name in functions
        ]
        digest = put_record(given.record, key, rows, aws)
    # Mappings first: a mapping's batch already received runs on a function not yet frozen.
    disabled = for_each(functions, lambda name: _disable(name, mappings.get(name, []), aws))
    disabled_failures = [
        name for name, outcome in zip(functions, disabled, strict=True) if isinstance(outcome, Exception)
    ]
    if disabled_failures:
        first = next(outcome for outcome in disabled if isinstance(outcome, Exception))
        raise FreezeFailed(
            f"{len(disabled_failures)} function(s) whose event source mappings could not be disabled, "
            f"e.g. {disabled_failures[:NAMED_FAILURES]}: {first}"
        )
    outcomes = for_each(functions, lambda name: _put(name, 0, aws))
    failed = [
        name for name, outcome in zip(functions, outcomes, strict=True) if isinstance(outcome, Exception)
    ]
    if failed:
        # A function that could not be frozen still writes: the batch failed, and the way back
        # (which reads the record written above) puts back the ones that were.
        first = next(outcome for outcome in outcomes if isinstance(outcome, Exception))
        raise FreezeFailed(f"{len(failed)} function(s) not frozen, e.g. {failed[:NAMED_FAILURES]}: {first}")
    return FreezeOutcome(
        index=given.batch.index,
        frozen=len(functions),
        record_key=key,
        record_sha256=digest,
        mappings_disabled=sum(outcome for outcome in disabled if isinstance(outcome, int)),
    )


def _disable(name: str, mappings: list[dict[str, Any]], aws: AwsClients) -> int:
    with aws_errors_as_transient():
        return disable_mappings(mappings, aws)


def unfreeze_batch(given: BatchRequest, aws: AwsClients) -> UnfreezeOutcome:
    """Put back each function's recorded concurrency where it still has the 0 the freeze set."""
    key = results_key(given.record, "freeze", given.batch.index)
    with aws_errors_as_transient():
        functions = {function.function_name for function in read_batch(given.record, given.batch, aws)}
        rows = find_record(given.record, key, aws) or []  # no record: this batch was never frozen
    recorded = {row["functionName"]: row["previous"] for row in rows if row["functionName"] in functions}
    recorded_mappings: dict[str, list[dict[str, Any]]] = {
        row["functionName"]: list(row.get("eventSourceMappings") or []) for row in rows
    }

    still_there = CacheNames.of([given.keep_frozen_on]) if given.keep_frozen_on else None
    mapping_results: dict[str, tuple[int, list[str]]] = {}

    def thaw(name: str) -> str:
        with aws_errors_as_transient():
            current = reserved_concurrency(name, aws)
            if current == recorded[name]:
                outcome = "unchanged"
            elif current != 0:
                outcome = "changedByOthers"
            else:
                if still_there is not None:
                    config = aws.lambda_.get_function_configuration(FunctionName=name)
                    if uses_cache((config.get("Environment") or {}).get("Variables") or {}, still_there):
                        # Its restore failed: thawed, it would write there (and so would its
                        # mappings, which stay disabled with it).
                        return "keptFrozen"
                if recorded[name] is None:
                    aws.lambda_.delete_function_concurrency(FunctionName=name)
                else:
                    _put(name, int(recorded[name]), aws)
                outcome = "restored"
            # Concurrency first, then the mappings: their backlog finds a function that can run.
            mapping_results[name] = restore_mappings(name, recorded_mappings.get(name, []), aws)
        return outcome

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
        mappings_enabled=sum(enabled for enabled, _ in mapping_results.values()),
        mappings_changed_by_others=[line for name in names for line in mapping_results.get(name, (0, []))[1]],
    )


def _put(name: str, value: int, aws: AwsClients) -> None:
    with aws_errors_as_transient():
        try:
            aws.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=value)
        except Exception as error:
            if error_code(error) == "InvalidParameterValueException":
                raise ConcurrencyRefused(concurrency_refusal(name, value, error)) from None
            raise


def concurrency_refusal(name: str, value: int, error: Exception) -> str:
    """What Lambda's refusal of a reserved concurrency says, in the run's words: each of Lambda's
    rules has its own message, and only that rule is named."""
    message = str(getattr(error, "response", {}).get("Error", {}).get("Message") or error).strip()
    if "provisioned concurrency" in message:
        return (
            f"{name}: reserved concurrency {value} refused: the function has provisioned concurrency, and "
            f"Lambda refuses a reserved concurrency below it ({message}); remove its provisioned "
            'concurrency for the migration (and put it back after), or choose "dataCopy": "warm"'
        )
    if "UnreservedConcurrentExecution" in message:
        return (
            f"{name}: reserved concurrency {value} refused: the account must keep a minimum of unreserved "
            f"concurrency ({message}); raise the account's concurrency quota or lower other reservations"
        )
    return f"{name}: reserved concurrency {value} refused by Lambda: {message}"


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

    mappings: dict[str, list[dict[str, Any]]] = {}
    with aws_errors_as_transient():
        for batch in given.batches:
            rows = find_record(given.record, results_key(given.record, "freeze", batch.index), aws) or []
            mappings.update({row["functionName"]: list(row.get("eventSourceMappings") or []) for row in rows})

    def check(name: str) -> str | None:
        line, kept_frozen = check_concurrency(name)
        if kept_frozen:  # its mappings stay disabled with it, as the line says
            return line
        with aws_errors_as_transient():
            lines = [*([line] if line else []), *mapping_leftovers(name, mappings.get(name, []), aws)]
        return "; ".join(lines) or None

    def check_concurrency(name: str) -> tuple[str | None, bool]:
        with aws_errors_as_transient():
            current = reserved_concurrency(name, aws)
            if current == recorded[name]:
                return None, False
            wanted = "none" if recorded[name] is None else str(recorded[name])
            if current == 0 and still_there is not None:
                config = aws.lambda_.get_function_configuration(FunctionName=name)
                if uses_cache((config.get("Environment") or {}).get("Variables") or {}, still_there):
                    return (
                        f"function {name}: still points to the self-hosted Redis {given.self_hosted_host}, "
                        "so it stays frozen (reserved concurrency 0, its event source mappings disabled) "
                        "rather than write there: put its variables back (see the restore above), then "
                        f"its reserved concurrency ({wanted}) and its mappings, as in {freeze_records}"
                    ), True
        return (
            f"function {name}: reserved concurrency is {'none' if current is None else current}, not the "
            f"{wanted} recorded before the freeze ({freeze_records}); put it back"
        ), False

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
