"""The real ASL through the local engine: real handlers, moto for AWS, a sandboxed real Redis.

Each test gets its own local account (moto state is per engine). Building one takes a few
seconds; a migration a few more.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_migration.models import MANAGED_KEYS

from redis_migration_ops.account.description import OLD_AUTH_KEY
from redis_migration_ops.local_engine import LocalEngine
from redis_migration_ops.local_engine.iam.enforcement import decide
from redis_migration_ops.local_engine.iam.resources import World
from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.client_writes import ClientWrites, WriterSettings
from redis_migration_ops.rehearsal.ledger import LedgerVerdict, to_do_items
from redis_migration_ops.rehearsal.migration import LocalSetup, RunResult, WorldSnapshot, local_setup

CLIENTS = 3

pytestmark = pytest.mark.skipif(
    bool(SandboxHost.missing_requirements()),
    reason=f"the sandbox host needs {SandboxHost.missing_requirements()}",
)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[LocalSetup]:
    with local_setup(tmp_path / "rehearsal", CLIENTS) as made:
        yield made


@dataclass
class Writers:
    """The write ledger's writers on a LocalSetup (one per client function), and their verdict."""

    writes: ClientWrites
    setup: LocalSetup

    def verdict(self, *runs: RunResult) -> LedgerVerdict:
        """Stop the writers, then check every acknowledged write against the servers; what the
        ``runs`` left to do by hand counts as named (see rehearsal/ledger.py for the rule)."""
        self.writes.stop()
        return self.writes.check(to_do_items(run.described for run in runs), self.setup.password())


StartWriters = Callable[..., Writers]


@pytest.fixture
def start_writers() -> Iterator[StartWriters]:
    """``start_writers(setup, rate=4.0, other_writer=False, function_writers=True)``: writers running
    until ``verdict`` (or the test's end), each set with its own ledger. Keep runs short: a few keys,
    a low rate; the writers are bounded in time too."""
    started: list[ClientWrites] = []

    def start(
        setup: LocalSetup, *, rate: float = 4.0, other_writer: bool = False, function_writers: bool = True
    ) -> Writers:
        assert setup.elasticache is not None
        # Each set of writers keeps its own ledger file.
        workdir = setup.workdir / f"writers-{len(started) + 1}"
        workdir.mkdir(parents=True, exist_ok=True)
        writes = ClientWrites(
            setup.engine,
            setup.account,
            elasticache=setup.elasticache,
            sandbox=setup.sandbox,
            workdir=workdir,
            settings=WriterSettings(
                rate=rate, max_seconds=600.0, other_writer=other_writer, function_writers=function_writers
            ),
        )
        writes.start()
        started.append(writes)
        return Writers(writes, setup)

    yield start
    for writes in started:
        writes.stop()


def is_migrated(setup: LocalSetup, before: WorldSnapshot, after: WorldSnapshot, run: RunResult) -> bool:
    """Every client switched (managed keys only), every other function and variable untouched."""
    target = run.output["target"]
    for name in setup.account.client_functions:
        was, now = before.environments[name], after.environments[name]
        expected = {k: v for k, v in was.items() if k not in (*MANAGED_KEYS, OLD_AUTH_KEY)}
        expected.update({k: v for k, v in target.items() if v is not None})
        if now != expected:
            return False
    others_untouched = all(
        before.environments[name] == after.environments[name] for name in setup.account.other_functions
    )
    port = run.output["ingress"]["port"]
    return others_untouched and set(after.ingress) >= {
        f"{port} {group}" for group in run.output["ingress"]["addedSourceGroupIds"]
    }


def back_on_elasticache(before: WorldSnapshot, after: WorldSnapshot) -> list[str]:
    """What a rollback days later must achieve: the functions and the rules exactly as before the
    migration, and the self-hosted Redis still running (the guide keeps it as a backup)."""
    problems = [line for line in before.differences(after) if line.startswith(("function ", "ingress"))]
    if after.host is None or after.host.service.active != "active":
        problems.append("the self-hosted Redis is not running any more")
    return problems


def leftovers(run: RunResult) -> list[str]:
    """The ``leftToDoByHand`` list of a RollbackFailed cause."""
    return list(json.loads(run.described["cause"])["leftToDoByHand"])


def differences(before: WorldSnapshot, after: WorldSnapshot) -> dict[str, Any]:
    changed: dict[str, Any] = {
        name: {"before": before.environments[name], "after": after.environments[name]}
        for name in before.environments
        if before.environments[name] != after.environments[name]
    }
    if before.ingress != after.ingress:
        changed["(ingress)"] = {"before": before.ingress, "after": after.ingress}
    lines = before.differences(after)
    if any(line.startswith("host:") for line in lines):
        changed["(host)"] = [line for line in lines if line.startswith("host:")]
    for name in before.concurrency:
        if before.concurrency.get(name) != after.concurrency.get(name):
            changed.setdefault(name, {})["reservedConcurrency"] = (
                before.concurrency[name],
                after.concurrency.get(name),
            )
    if before.source != after.source:
        changed["(elasticache)"] = {"before": before.source, "after": after.source}
    if before.services != after.services:
        changed["(services)"] = {"before": before.services, "after": after.services}
    if before.service_units != after.service_units:
        changed.setdefault("(services)", {})["units"] = {
            "before": before.service_units,
            "after": after.service_units,
        }
    for uuid in sorted(set(before.event_source_mappings) | set(after.event_source_mappings)):
        was, now = before.event_source_mappings.get(uuid), after.event_source_mappings.get(uuid)
        if was != now:
            function = str(was or now).split(" ", 1)[0].split(":", 1)[0]
            changed.setdefault(function, {})[f"eventSourceMapping {uuid}"] = (was, now)
    return changed


@dataclass(frozen=True)
class QueueFeed:
    """An SQS queue (and its dead-letter queue) feeding a client function through a mapping."""

    function: str
    url: str
    dlq_url: str
    mapping: str


def add_queue_feed(
    setup: LocalSetup, function: str, *, visibility_timeout: int = 1, max_receive_count: int = 1
) -> QueueFeed:
    """A queue whose messages a mapping delivers to ``function``; after ``max_receive_count``
    receives a message goes to the dead-letter queue (a frozen function's batches come back)."""
    sqs, lambda_ = setup.engine.client("sqs"), setup.engine.client("lambda")
    dlq_url = sqs.create_queue(QueueName=f"{function}-dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = json.dumps(
        {"deadLetterTargetArn": dlq["Attributes"]["QueueArn"], "maxReceiveCount": max_receive_count}
    )
    url = sqs.create_queue(
        QueueName=f"{function}-calls",
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lambda_.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, BatchSize=10)
    return QueueFeed(function, url, dlq_url, str(mapping["UUID"]))


def queue_depths(setup: LocalSetup, feed: QueueFeed) -> tuple[int, int]:
    """(messages in the queue, visible or in flight; messages in its dead-letter queue)."""
    sqs = setup.engine.client("sqs")

    def depth(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    return depth(feed.url), depth(feed.dlq_url)


def approval_token(setup: LocalSetup, execution_arn: str) -> str:
    """The task token of the approval request the execution is waiting on."""
    for event in setup.engine.history(execution_arn):
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == "publish.waitForTaskToken":
            message = json.loads(json.loads(details["parameters"])["Message"])
            return str(message["taskToken"])
    raise AssertionError("no approval request in the history")


def assert_calls_allowed_and_each_statement_needed(engine: LocalEngine, principals: set[str]) -> set[str]:
    """Every IAM call of ``principals`` was allowed, and each statement that allowed one is needed:
    without it, one of those calls would be denied. Answers the actions called."""
    calls = [c for c in engine.iam_calls if c.principal in principals]
    assert calls
    assert [c for c in calls if not c.allowed] == []
    world = World(engine.account_id, engine.region)
    for principal_name, label in sorted({(c.principal, str(c.statement)) for c in calls}):
        principal = engine.principal(principal_name)
        remaining = tuple(s for s in principal.statements if s.label != label)
        assert any(
            not decide(principal, c.check, world, remaining).allowed
            for c in calls
            if c.principal == principal_name
        ), f"{principal_name}: {label} allows nothing the steps need"
    return {c.action for c in calls}
