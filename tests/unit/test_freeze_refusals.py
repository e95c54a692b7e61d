"""What the freeze says when Lambda refuses a reserved concurrency, and what the preflight makes of
provisioned concurrency and asynchronous event ages (no AWS: the refusals are Lambda's own words)."""

from __future__ import annotations

from botocore.exceptions import ClientError
from redis_migration.clients.freeze_preflight import freeze_refusals
from redis_migration.models import AsyncEventAge, WriterFreezeFacts
from redis_migration.steps.freeze import concurrency_refusal


def refused(message: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "InvalidParameterValueException", "Message": message}}, "PutFunctionConcurrency"
    )


def test_each_of_lambdas_refusals_is_named_for_what_it_says() -> None:
    provisioned = concurrency_refusal(
        "dialer",
        0,
        refused(
            " ReservedConcurrentExecutions  0 should not be lower than function's total provisioned "
            "concurrency [2]."
        ),
    )
    assert "the function has provisioned concurrency" in provisioned
    assert "[2]" in provisioned
    assert "unreserved" not in provisioned
    minimum = concurrency_refusal(
        "dialer",
        0,
        refused(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [100]."
        ),
    )
    assert "the account must keep a minimum of unreserved concurrency" in minimum
    other = concurrency_refusal("dialer", 0, refused("Something new Lambda says"))
    assert other == "dialer: reserved concurrency 0 refused by Lambda: Something new Lambda says"


def test_provisioned_writers_are_refused_and_short_event_ages_refused_or_warned_with_figures() -> None:
    facts = WriterFreezeFacts(
        provisioned=["dialer:live (2)", "dialer:3 (1)"],
        provisioned_functions=2,
        shortest_event_ages=[
            AsyncEventAge(function="reporter", maximum_event_age_seconds=60),
            AsyncEventAge(function="worker:live", maximum_event_age_seconds=120, on_failure="arn:aws:sqs:x"),
            AsyncEventAge(function="slow", maximum_event_age_seconds=3600),
        ],
    )
    refusals, warnings = freeze_refusals(facts, 75)
    assert len(refusals) == 2
    assert refusals[0].startswith(
        "provisionedConcurrency: 2 writer(s) have provisioned concurrency "
        "(dialer:live (2), dialer:3 (1) and 1 more)"
    )
    assert "expire after 60 s" in refusals[1]
    assert "frozen for about 75 s" in refusals[1]
    assert "could wait 375 s" in refusals[1]
    assert "--maximum-event-age-in-seconds 375" in refusals[1]
    # ... an event that expires into an on-failure destination is not lost: a warning, with figures
    assert len(warnings) == 1
    assert "worker:live expire after 120 s" in warnings[0]
    assert "go to arn:aws:sqs:x" in warnings[0]
    # ... and a long enough event age is no finding at all
    assert freeze_refusals(WriterFreezeFacts(shortest_event_ages=facts.shortest_event_ages[2:]), 75) == (
        [],
        [],
    )
