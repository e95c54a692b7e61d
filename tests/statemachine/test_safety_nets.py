"""The safety nets behave as AWS does (issue 17): what Lambda refuses or does to a frozen writer is
refused or handled before anything changes, through the real ASL and the engine's model of AWS."""

from __future__ import annotations

import json

from redis_migration.clients.environment import ENVIRONMENT_LIMIT_BYTES, environment_size

from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.migration import LocalSetup
from tests.statemachine.conftest import (
    add_queue_feed,
    assert_calls_allowed_and_each_statement_needed,
    queue_depths,
)

CONSISTENT = {"dataCopy": "consistent"}


def message_of(cause: str) -> str:
    """A failure's message: the cause itself, or the ``errorMessage`` of a Lambda error's JSON."""
    try:
        return str(json.loads(cause)["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return cause


def test_a_function_whose_environment_would_pass_4_kb_is_refused_by_name_and_size(setup: LocalSetup) -> None:
    # Given a client whose variables are 30 bytes under Lambda's 4 KB: the managed keys would pass it
    name = setup.account.client_functions[1]
    lambda_ = setup.engine.client("lambda")
    variables = lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    padding = ENVIRONMENT_LIMIT_BYTES - 30 - environment_size({**variables, "NOTES": ""})
    variables["NOTES"] = "n" * padding
    assert environment_size(variables) == ENVIRONMENT_LIMIT_BYTES - 30
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    lambda_.get_waiter("function_updated_v2").wait(FunctionName=name)
    before = setup.snapshot()

    # When the migration keeps the old variables (nothing removed) and adds the managed keys
    run = setup.run({"removeKeys": []}, name="environment-too-large")

    # Then it is refused before anything changes, naming the function and both sizes
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = run.described["cause"]
    assert f"function {name}: its environment would be " in cause
    assert f"(now {ENVIRONMENT_LIMIT_BYTES - 30}), over Lambda's limit of 4096 bytes" in cause
    assert "EnsurePasswordSecret" not in run.states_entered
    assert setup.snapshot() == before


def test_a_writer_s_queue_is_held_during_the_freeze_and_nothing_reaches_its_dead_letter_queue(
    setup: LocalSetup,
) -> None:
    # Given ElastiCache with keys and a writer fed by an SQS queue whose messages go to a dead-letter
    # queue after one receive (a visibility timeout of 1 s), with producers sending all along
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(100)
    writer = setup.account.client_functions[1]
    feed = add_queue_feed(setup, writer)
    sqs = setup.engine.client("sqs")
    sent: list[int] = []
    states: dict[str, str] = {}

    def producers(record: WaitRecord) -> None:
        if record.state_name == "WaitForWritersToFinish":
            states.update({row["uuid"]: row["state"] for row in setup.engine.event_source_mappings()})
        for number in range(3):
            sqs.send_message(QueueUrl=feed.url, MessageBody=f"call {len(sent)}-{number}")
        sent.append(3)

    setup.engine.on_wait(producers)
    before = setup.snapshot()

    # When a consistent migration freezes the writers and bakes a few minutes
    run = setup.run({**CONSISTENT, "bakeMinutes": 2}, name="queue-held")
    after = setup.snapshot()

    # Then the mapping was disabled during the freeze and is enabled again, as before
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    assert states == {feed.mapping: "Disabled"}
    assert after.event_source_mappings == before.event_source_mappings
    assert after.event_source_mappings[feed.mapping].startswith(f"{writer} Enabled ")
    # ... no message was throttled into the dead-letter queue; those sent meanwhile were delivered
    # once the writer ran again (the ones sent at the last wait are still queued)
    assert setup.engine.sqs_polling.throttled[feed.mapping] == 0
    queued, dead = queue_depths(setup, feed)
    assert dead == 0
    assert setup.engine.sqs_polling.delivered[feed.mapping] + queued == sum(sent)
    # ... and every call the freeze and the thaw made was allowed by the template, each statement needed
    actions = assert_calls_allowed_and_each_statement_needed(
        setup.engine, {"FreezeWritersFunction", "UnfreezeWritersFunction"}
    )
    assert {"lambda:ListEventSourceMappings", "lambda:UpdateEventSourceMapping"} <= actions


def test_a_writer_with_provisioned_concurrency_is_refused_by_name_before_any_change(
    setup: LocalSetup,
) -> None:
    # Given ElastiCache with keys and a writer with provisioned concurrency on its alias
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(50)
    writer = setup.account.client_functions[2]
    lambda_ = setup.engine.client("lambda")
    version = lambda_.publish_version(FunctionName=writer)["Version"]
    lambda_.create_alias(FunctionName=writer, Name="live", FunctionVersion=version)
    lambda_.put_provisioned_concurrency_config(
        FunctionName=writer, Qualifier="live", ProvisionedConcurrentExecutions=2
    )
    before = setup.snapshot()

    # When a consistent migration would freeze it (Lambda refuses reserved concurrency 0 below 2)
    run = setup.run(CONSISTENT, name="provisioned-writer")

    # Then it is refused before anything changes, naming the writer, its alias and the ways on
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = message_of(run.described["cause"])
    assert f"provisionedConcurrency: 1 writer(s) have provisioned concurrency ({writer}:live (2))" in cause
    assert '"dataCopy": "warm"' in cause
    assert "FreezeWriters" not in run.states_entered
    assert setup.snapshot() == before


def test_a_writer_whose_async_events_would_expire_during_the_freeze_is_refused_with_the_figures(
    setup: LocalSetup,
) -> None:
    # Given ElastiCache with keys and a writer that drops asynchronous events after 60 s
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(50)
    writer = setup.account.client_functions[0]
    setup.engine.client("lambda").put_function_event_invoke_config(
        FunctionName=writer, MaximumEventAgeInSeconds=60
    )
    before = setup.snapshot()

    # When a consistent migration would hold its events back for the freeze (and Lambda's retry)
    run = setup.run(CONSISTENT, name="async-events-expire")

    # Then it is refused before anything changes, with the figures and the ways on
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = message_of(run.described["cause"])
    assert f"asyncInvoke: asynchronous events to {writer} expire after 60 s (MaximumEventAgeInSeconds)" in (
        cause
    )
    assert "up to 300 s later" in cause
    assert "no on-failure destination or dead-letter queue" in cause
    assert "--maximum-event-age-in-seconds" in cause
    assert setup.snapshot() == before
