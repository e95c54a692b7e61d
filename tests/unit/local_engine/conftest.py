"""Fixtures for the local engine's tests: the fixture template, a deployed engine, a tiny-ASL runner."""

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_migration_ops.local_engine import LocalEngine

FIXTURES = Path(__file__).parent / "fixtures"
_names = itertools.count(1)

RunAsl = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def fixtures_dir() -> Path:
    """The directory of the fixture template (the engine's repo root in these tests)."""
    return FIXTURES


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    """A running engine with the fixture template deployed."""
    with LocalEngine(FIXTURES) as running:
        running.deploy({"ProjectName": "campaign"})
        yield running


@pytest.fixture
def bare_engine() -> Iterator[LocalEngine]:
    """A running engine with nothing deployed."""
    with LocalEngine(FIXTURES) as running:
        yield running


@pytest.fixture
def run_asl(bare_engine: LocalEngine) -> RunAsl:
    """Create a state machine from ``definition``, run it on ``input`` and describe the result."""

    def run(definition: dict[str, Any], execution_input: Any) -> dict[str, Any]:
        number = next(_names)
        sfn = bare_engine.client("stepfunctions")
        machine = sfn.create_state_machine(
            name=f"tiny-{number}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/tiny",
        )
        started = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"],
            name=f"tiny-run-{number}",
            input=json.dumps(execution_input),
        )
        return bare_engine.wait_for_execution(started["executionArn"], timeout_s=20)

    return run
