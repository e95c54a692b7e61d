"""The writers' event source mappings, held for a write freeze and put back exactly afterwards.

Reserved concurrency 0 does not stop an event source mapping: "Event source mappings don't
account for reserved concurrency" (https://repost.aws/knowledge-center/lambda-sqs-scaling). Lambda
keeps polling an SQS queue, every batch it receives is throttled and returns to the queue after
the visibility timeout ("The extra time allows Lambda to retry if your function is throttled",
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html), and each receive counts
toward the queue's ``maxReceiveCount``, after which SQS moves the message to the dead-letter queue
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
A freeze of a few minutes would send a queue's messages to its DLQ, or drop stream records whose
``MaximumRecordAgeInSeconds`` passes. A disabled mapping stops polling and resumes where it stopped
when enabled again: "If you disable the event source mapping, AWS Lambda stops polling. If you
enable again, it will resume polling from the time it had stopped polling"
(https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html).

So the freeze disables every mapping of each writer (any source: SQS, Kinesis, DynamoDB, Kafka,
MQ; on the function or on one of its versions or aliases), after recording its state, and waits
until Lambda reports it ``Disabled``. The way back enables exactly the ones that were enabled,
where they are still disabled; a mapping someone else changed or deleted meanwhile is named, not
touched.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from redis_migration.aws import AwsClients, error_code
from redis_migration.errors import TransientError

# States in which a mapping polls (or is about to): the freeze disables these.
POLLING_STATES = frozenset({"Enabled", "Enabling", "Creating", "Updating"})
# States of a mapping the freeze has stopped (or is stopping).
STOPPED_STATES = frozenset({"Disabled", "Disabling"})
# How long the freeze waits for a disabled mapping to stop polling, and how often it looks.
DISABLE_WAIT_SECONDS = 60.0
DISABLE_POLL_SECONDS = 2.0


def function_of(function_arn: str) -> str:
    """The function name of a (qualified) function ARN."""
    return function_arn.split(":function:", 1)[-1].split(":", 1)[0]


def mappings_of(functions: Collection[str], aws: AwsClients) -> dict[str, list[dict[str, Any]]]:
    """Function -> its event source mappings (on the function, a version or an alias), as recorded:
    ``uuid``, ``eventSourceArn``, ``functionArn`` and ``state``. One paginated listing of the
    account's mappings (a listing by function name leaves out those on aliases)."""
    wanted = set(functions)
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
    paginator = aws.lambda_.get_paginator("list_event_source_mappings")
    for page in paginator.paginate():
        for mapping in page.get("EventSourceMappings", []):
            name = function_of(str(mapping.get("FunctionArn", "")))
            if name in wanted:
                found[name].append(
                    {
                        "uuid": mapping["UUID"],
                        "eventSourceArn": mapping.get("EventSourceArn"),
                        "functionArn": mapping.get("FunctionArn"),
                        "state": mapping.get("State"),
                    }
                )
    for rows in found.values():
        rows.sort(key=lambda row: str(row["uuid"]))
    return found


def _update(uuid: str, enabled: bool, aws: AwsClients) -> None:
    try:
        aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=enabled)
    except Exception as error:
        if error_code(error) == "ResourceInUseException":  # a state change is still in progress
            raise TransientError(f"event source mapping {uuid}: {error}") from error
        raise


def current_state(uuid: str, aws: AwsClients) -> str | None:
    """The mapping's state now; None when it no longer exists."""
    try:
        return str(aws.lambda_.get_event_source_mapping(UUID=uuid).get("State"))
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def disable_mappings(recorded: Sequence[Mapping[str, Any]], aws: AwsClients) -> int:
    """Disable every recorded mapping that polled before the freeze, then wait until Lambda reports
    each ``Disabled``; answers how many were disabled. Idempotent: a mapping already stopped is left."""
    disabled: list[str] = []
    for mapping in recorded:
        if mapping.get("state") not in POLLING_STATES:
            continue
        uuid = str(mapping["uuid"])
        state = current_state(uuid, aws)
        if state is None or state == "Disabled":
            continue
        if state != "Disabling":
            _update(uuid, False, aws)
        disabled.append(uuid)
    deadline = time.monotonic() + DISABLE_WAIT_SECONDS
    waiting = list(disabled)
    while waiting:
        waiting = [uuid for uuid in waiting if current_state(uuid, aws) not in (None, "Disabled")]
        if not waiting:
            break
        if time.monotonic() >= deadline:
            raise TransientError(
                f"event source mapping(s) {', '.join(waiting)} still disabling after "
                f"{DISABLE_WAIT_SECONDS:.0f} s; Lambda may still poll for them"
            )
        time.sleep(DISABLE_POLL_SECONDS)
    return len(disabled)


def restore_mappings(
    function: str, recorded: Sequence[Mapping[str, Any]], aws: AwsClients
) -> tuple[int, list[str]]:
    """Enable again each recorded mapping that polled before the freeze and is still stopped.

    Answers how many were enabled, and one line per mapping someone else changed (deleted, or
    enabled or disabled otherwise) since the freeze, left as it is.
    """
    enabled, changed = 0, []
    for mapping in recorded:
        if mapping.get("state") not in POLLING_STATES:
            continue
        uuid = str(mapping["uuid"])
        state = current_state(uuid, aws)
        if state is None:
            changed.append(
                f"function {function}: event source mapping {uuid} ({mapping.get('eventSourceArn')}) "
                "was deleted since the freeze"
            )
        elif state in STOPPED_STATES:
            _update(uuid, True, aws)
            enabled += 1
    return enabled, changed


def mapping_leftovers(function: str, recorded: Sequence[Mapping[str, Any]], aws: AwsClients) -> list[str]:
    """One line per recorded mapping that is not polling as it did before the freeze."""
    lines = []
    for mapping in recorded:
        if mapping.get("state") not in POLLING_STATES:
            continue
        uuid = str(mapping["uuid"])
        state = current_state(uuid, aws)
        if state in POLLING_STATES:
            continue
        source = mapping.get("eventSourceArn")
        way = (
            "recreate it"
            if state is None
            else f"enable it (aws lambda update-event-source-mapping --uuid {uuid} --enabled)"
        )
        lines.append(
            f"function {function}: event source mapping {uuid} from {source} is "
            f"{'deleted' if state is None else state}, not enabled as before the freeze; {way}"
        )
    return lines
