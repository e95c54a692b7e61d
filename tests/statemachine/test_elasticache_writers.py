"""Every writer of ElastiCache is switched, frozen, or the run refuses: CLIENT LIST of every node
compared with the plan, as the real ASL runs it.

The replication group has two nodes (a primary and a replica behind the reader endpoint). The
clients connect to the rehearsal's ElastiCache the way they would on AWS: a function's code from the
function's Lambda interface (``engine.acting_as_function``), an ECS task or a stranger from its own
address (``engine.acting_as_address``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from redis_migration_ops.account.description import sample_account
from redis_migration_ops.rehearsal.migration import LocalSetup, local_setup
from tests.statemachine.conftest import CLIENTS, differences

UNKNOWN_ADDRESS = "10.42.9.9"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[LocalSetup]:
    """The rehearsal's account with a replication group of two nodes."""
    description = sample_account(CLIENTS)
    description = description.model_copy(
        update={"elasticache": description.elasticache.model_copy(update={"node_count": 2})}
    )
    with local_setup(tmp_path / "rehearsal", description) as made:
        yield made


def reader_endpoint(setup: LocalSetup) -> str:
    group = setup.engine.client("elasticache").describe_replication_groups(
        ReplicationGroupId=setup.account.replication_group_id
    )["ReplicationGroups"][0]
    return str(group["NodeGroups"][0]["ReaderEndpoint"]["Address"])


def _client(setup: LocalSetup, host: str | None = None) -> Any:
    return redis.Redis(
        host=host or setup.account.elasticache_endpoint,
        port=6379,
        password=setup.account.elasticache_auth_token,
        ssl=True,
        socket_timeout=5,
        protocol=2,
        driver_info=None,
    )


def ecs_task_address(setup: LocalSetup) -> str:
    """An ``awsvpc`` ECS task's interface in the account's first subnet."""
    interface = setup.engine.client("ec2").create_network_interface(
        SubnetId=setup.account.subnet_ids[0],
        Description="arn:aws:ecs:us-east-1:123456789012:attachment/6f1c2d3e-campaign-dialer",
    )["NetworkInterface"]
    return str(interface["PrivateIpAddress"])


@contextmanager
def writers(setup: LocalSetup, functions: list[str], addresses: list[str]) -> Iterator[None]:
    """A client that has written to ElastiCache and stays connected, for each function and address."""
    with ExitStack() as stack:
        for name in functions:
            client = stack.enter_context(_client(setup))
            with setup.engine.acting_as_function(name):
                client.set(f"writer:{name}", "1")
        for address in addresses:
            client = stack.enter_context(_client(setup))
            with setup.engine.acting_as_address(address):
                client.set(f"writer:{address}", "1")
        yield


def test_consistent_mode_refuses_every_writer_it_would_neither_switch_nor_freeze(setup: LocalSetup) -> None:
    # Given ElastiCache with data, and writers the run would not switch: an ECS task, an address no
    # interface has, and a client function left out of `functions` (its Lambda interface is
    # shared with the planned ones), beside a planned function's own connection; and the task also
    # reads through the reader endpoint, from the replica
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(200)
    planned, left_out = setup.account.client_functions[:-1], setup.account.client_functions[-1]
    task = ecs_task_address(setup)
    with (
        writers(setup, [planned[0], left_out], [task, UNKNOWN_ADDRESS]),
        _client(setup, reader_endpoint(setup)) as reader,
    ):
        with setup.engine.acting_as_address(task):
            reader.get("writer:1")
        before = setup.snapshot()
        # When a consistent migration of the other functions starts
        run = setup.run({"dataCopy": "consistent", "functions": planned}, name="writers-refused")
        after = setup.snapshot()
    # Then it refuses before any change, naming each writer and the ways on
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "PreconditionFailed", run.described.get("cause")
    cause = json.loads(run.described["cause"])["errorMessage"]
    assert "ecs-task eni-" in cause
    assert f"at {task} on campaign-redis-001." in cause
    assert f"at {task} on campaign-redis-002." in cause  # the replica's CLIENT LIST names it too
    assert f"at {UNKNOWN_ADDRESS} on " in cause
    assert "an address no network interface of this account and region has" in cause
    assert f"{left_out} name(s) this ElastiCache but the run does not switch it" in cause
    assert "include it (in functions, or hostServices" in cause
    assert '"dataCopy": "warm"' in cause
    entered = run.states_entered
    assert "CheckElastiCacheClientsBefore" in entered
    assert "EnsurePasswordSecret" not in entered
    assert "FreezeWriters" not in entered
    # And nothing changed: functions, their concurrency, rules, the host, the secret
    assert before == after, differences(before, after)
    assert setup.password() is None


def test_warm_mode_names_the_writers_it_leaves_on_elasticache_and_goes_on(setup: LocalSetup) -> None:
    # Given the same writers
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(200)
    planned, left_out = setup.account.client_functions[:-1], setup.account.client_functions[-1]
    task = ecs_task_address(setup)
    with writers(setup, [planned[0], left_out], [task, UNKNOWN_ADDRESS]):
        # When a warm migration of the other functions runs
        run = setup.run({"dataCopy": "warm", "functions": planned}, name="writers-warned")
    # Then it migrates, and its output (the plan's and the report's source) names each writer it
    # leaves on ElastiCache; the planned function's own connection is switched, not warned about
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    clients = run.output["clientsBefore"]
    warnings = "\n".join(clients["warnings"])
    assert f"at {task} on " in warnings
    assert f"at {UNKNOWN_ADDRESS} on " in warnings
    assert f"{left_out} name(s) this ElastiCache" in warnings
    assert all("its writes stay on ElastiCache" in line for line in clients["warnings"])
    assert len(clients["warnings"]) == 3
    # (the planned function shares its Lambda interface with the left-out one: Lambda cannot say
    # whose connection it is, so the interface is not switched)
    assert not [line for line in clients["lines"] if "; switched: " in line]


def test_connections_whose_functions_are_all_switched_are_no_refusal(setup: LocalSetup) -> None:
    # Given ElastiCache with data, a planned function writing, and an old execution environment's
    # idle socket on the same interface
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(200)
    address = setup.engine.function_address(setup.account.client_functions[0])
    assert address is not None
    setup.elasticache.leave_idle_connections(address)
    with writers(setup, [setup.account.client_functions[1]], []):
        # When a consistent migration of every client function is planned
        run = setup.run({"dataCopy": "consistent", "dryRun": True}, name="writers-switched")
    # Then the plan is made: the interface's functions are all switched; the one that shares it
    # without naming this ElastiCache is named beside it, and ElastiCache's own connections are not
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    clients = run.output["clients"]
    assert clients["warnings"] == []
    assert len(clients["lines"]) == 1
    line = clients["lines"][0]
    assert f"at {address} on " in line
    assert "; switched: the functions that may carry it are switched" in line
    assert "it may also be analytics-cache-user" in line
    assert "127.0.0.1" not in line
