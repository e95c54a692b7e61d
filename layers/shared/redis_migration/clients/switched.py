"""Which functions a run ever pointed at the self-hosted Redis, from its own records.

Whether the self-hosted Redis may be emptied after a rollback follows from what happened, not from
a flag a later state resets: a function that was switched (in any wave), or restored from it, could
have written there. The cutover and restore Maps write each function's outcome to the run's
records (``results/cutover-NNNN.json``, ``results/restore-NNNN.json``, see records.py). A batch the
cutover reached but whose record is missing (an attempt that died before writing it) counts as
switched: the answer errs towards keeping data, never towards clearing it.
"""

from __future__ import annotations

from redis_migration.aws import AwsClients, aws_errors_as_transient
from redis_migration.models import PlanBatch, RecordLocation
from redis_migration.records import find_record, read_batch, results_key

# Outcomes of a cutover that leave (or may leave) the function on the self-hosted Redis.
_SWITCHED = {"changed", "unchanged", "failed"}


def functions_pointed(
    record: RecordLocation, batches: list[PlanBatch], batches_started: int, aws: AwsClients
) -> list[str]:
    """The functions of the first ``batches_started`` batches that pointed at the self-hosted Redis
    at some moment of the run (sorted)."""
    pointed: set[str] = set()
    with aws_errors_as_transient():
        for batch in batches[:batches_started]:
            cutover = find_record(record, results_key(record, "cutover", batch.index), aws)
            if cutover is None:
                pointed.update(function.function_name for function in read_batch(record, batch, aws))
                continue
            pointed.update(row["functionName"] for row in cutover if row.get("outcome") in _SWITCHED)
            restore = find_record(record, results_key(record, "restore", batch.index), aws) or []
            pointed.update(row["functionName"] for row in restore if row.get("outcome") == "restored")
    return sorted(pointed)
