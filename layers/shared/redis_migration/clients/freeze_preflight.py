"""What a write freeze (reserved concurrency 0) would meet on the writers, read before anything changes.

- **Provisioned concurrency.** It "counts towards a function's reserved concurrency ... You can't
  allocate more provisioned concurrency than reserved concurrency for a function"
  (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html): Lambda refuses
  reserved concurrency 0 on a function that has any (" ReservedConcurrentExecutions  0 should
  not be lower than function's total provisioned concurrency [N]."). Read with
  ListProvisionedConcurrencyConfigs (every version and alias of the function).
- **Asynchronous events.** A throttled event goes back to Lambda's queue and is retried "for up
  to 6 hours by default. The retry interval increases exponentially from 1 second after the first
  attempt to a maximum of 5 minutes"
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html); an event
  older than the function's ``MaximumEventAgeInSeconds`` (60 s to 6 h) is discarded, or sent to its
  on-failure destination or dead-letter queue when it has one
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html). An event sent
  at the start of a freeze waits the whole freeze and then up to 5 minutes more. Read with
  ListFunctionEventInvokeConfigs (the function's, its versions' and aliases' settings).
- **Event source mappings**: counted here (the freeze disables them, see ``event_sources``).

CheckData judges these once it knows the mode and the freeze's length (``freeze_budget``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis_migration.aws import AwsClients
from redis_migration.clients.event_sources import function_of
from redis_migration.models import AsyncEventAge, WriterFreezeFacts

READ_THREADS = 8
# Writers named in the payload for each finding (the count says how many in all).
NAMED = 10
# Lambda's longest wait between two attempts of a throttled asynchronous event.
THROTTLED_RETRY_INTERVAL_SECONDS = 300
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 21600


def _qualified(function_arn: str) -> str:
    """``name`` or ``name:qualifier`` of a (qualified) function ARN."""
    return function_arn.split(":function:", 1)[-1]


def _provisioned(name: str, aws: AwsClients) -> list[str]:
    paginator = aws.lambda_.get_paginator("list_provisioned_concurrency_configs")
    return [
        f"{_qualified(str(config.get('FunctionArn', name)))} "
        f"({config.get('RequestedProvisionedConcurrentExecutions')})"
        for page in paginator.paginate(FunctionName=name)
        for config in page.get("ProvisionedConcurrencyConfigs", [])
    ]


def _event_ages(config: Mapping[str, Any], aws: AwsClients) -> list[AsyncEventAge]:
    name = str(config["FunctionName"])
    dead_letter = (config.get("DeadLetterConfig") or {}).get("TargetArn")
    paginator = aws.lambda_.get_paginator("list_function_event_invoke_configs")
    ages = []
    for page in paginator.paginate(FunctionName=name):
        for item in page.get("FunctionEventInvokeConfigs", []):
            on_failure = ((item.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            ages.append(
                AsyncEventAge(
                    function=_qualified(str(item.get("FunctionArn") or name)),
                    maximum_event_age_seconds=int(
                        item.get("MaximumEventAgeInSeconds") or DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
                    ),
                    on_failure=on_failure or dead_letter,
                )
            )
    return ages


def read_freeze_facts(configurations: Sequence[Mapping[str, Any]], aws: AwsClients) -> WriterFreezeFacts:
    """Provisioned concurrency, asynchronous event ages and event source mappings of the writers."""
    if not configurations:
        return WriterFreezeFacts()

    def read(config: Mapping[str, Any]) -> tuple[list[str], list[AsyncEventAge]]:
        return _provisioned(str(config["FunctionName"]), aws), _event_ages(config, aws)

    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(configurations))) as pool:
        answers = list(pool.map(read, configurations))
    provisioned = [line for lines, _ in answers for line in lines]
    ages = sorted(
        (age for _, found in answers for age in found), key=lambda age: age.maximum_event_age_seconds
    )
    names = {str(config["FunctionName"]) for config in configurations}
    mappings = 0
    for page in aws.lambda_.get_paginator("list_event_source_mappings").paginate():
        mappings += sum(
            1
            for mapping in page.get("EventSourceMappings", [])
            if function_of(str(mapping.get("FunctionArn", ""))) in names
        )
    return WriterFreezeFacts(
        provisioned=provisioned[:NAMED],
        provisioned_functions=sum(1 for lines, _ in answers if lines),
        shortest_event_ages=[
            age for age in ages if age.maximum_event_age_seconds < DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
        ][:NAMED],
        event_source_mappings=mappings,
    )


def freeze_refusals(facts: WriterFreezeFacts, freeze_seconds: int) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for a freeze of about ``freeze_seconds`` on writers with these facts."""
    refusals: list[str] = []
    warnings: list[str] = []
    if facts.provisioned:
        more = facts.provisioned_functions - len({line.split(":", 1)[0] for line in facts.provisioned})
        refusals.append(
            f"provisionedConcurrency: {facts.provisioned_functions} writer(s) have provisioned concurrency "
            f"({', '.join(facts.provisioned)}{f' and {more} more' if more > 0 else ''}); Lambda refuses a "
            "reserved concurrency below it, so the consistent copy cannot freeze them (reserved "
            "concurrency 0). Ways on: remove their provisioned concurrency for the migration "
            "(aws lambda delete-provisioned-concurrency-config) and put it back after, or choose "
            '"dataCopy": "warm" (no freeze)'
        )
    held = freeze_seconds + THROTTLED_RETRY_INTERVAL_SECONDS
    for age in facts.shortest_event_ages:
        if age.maximum_event_age_seconds >= held:
            continue
        figures = (
            f"asynchronous events to {age.function} expire after {age.maximum_event_age_seconds} s "
            f"(MaximumEventAgeInSeconds), but the writers would be frozen for about {freeze_seconds} s "
            f"and Lambda retries a throttled event up to {THROTTLED_RETRY_INTERVAL_SECONDS} s later: "
            f"an event sent as the freeze starts could wait {held} s"
        )
        if age.on_failure:
            warnings.append(
                f"asyncInvoke: {figures}; expired events go to {age.on_failure} (replay them from there), "
                f"or raise its maximum event age to at least {held} s for the migration"
            )
        else:
            refusals.append(
                f"asyncInvoke: {figures}, and it has no on-failure destination or dead-letter queue: such "
                f"events would be lost. Ways on: raise its maximum event age to at least {held} s "
                f"(aws lambda update-function-event-invoke-config --function-name {age.function} "
                f"--maximum-event-age-in-seconds {held}) for the migration, give it an on-failure "
                'destination, or choose "dataCopy": "warm" (no freeze)'
            )
    return refusals, warnings
