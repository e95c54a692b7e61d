"""The workflow's wall clock moves by every wait it asks for, as on AWS (workflow_clock.py)."""

import json
import time
from datetime import UTC, datetime

import pytest

from redis_migration_ops.local_engine import LocalEngine
from tests.unit.local_engine.conftest import RunAsl

# A bound checked with $now(), as the freeze's maxFreezeSeconds is: the Wait in between must count.
BOUNDED_WAIT = {
    "QueryLanguage": "JSONata",
    "StartAt": "Start",
    "States": {
        "Start": {"Type": "Pass", "Assign": {"startedAt": "{% $now() %}"}, "Next": "WaitForWriters"},
        "WaitForWriters": {"Type": "Wait", "Seconds": 900, "Next": "IsWithinBound"},
        "IsWithinBound": {
            "Type": "Choice",
            "Choices": [
                {
                    "Condition": "{% ($toMillis($now()) - $toMillis($startedAt)) / 1000 > 300 %}",
                    "Next": "TooLong",
                }
            ],
            "Default": "InTime",
        },
        "TooLong": {"Type": "Pass", "Output": {"bound": "exceeded"}, "End": True},
        "InTime": {"Type": "Pass", "Output": {"bound": "kept"}, "End": True},
    },
}


def test_a_wait_moves_now_so_a_bound_checked_with_now_sees_it(
    run_asl: RunAsl, bare_engine: LocalEngine
) -> None:
    # Given a workflow that waits 900 s inside a 300 s bound, on an engine that skips waits
    started = time.monotonic()
    wall_before = datetime.now(UTC)

    # When it runs
    described = run_asl(BOUNDED_WAIT, {})

    # Then it took no real time, but the bound saw the 900 s, as it would on AWS
    assert time.monotonic() - started < 10
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["output"]) == {"bound": "exceeded"}
    # And every clock the handlers and moto read moved with it (not the monotonic one)
    assert bare_engine.clock_advanced_seconds == 900
    assert (datetime.now(UTC) - wall_before).total_seconds() >= 900


def test_the_clock_is_real_again_once_the_engine_stops(fixtures_dir: object) -> None:
    def wall_ahead_of_monotonic() -> float:
        return time.time() - time.monotonic()

    real = wall_ahead_of_monotonic()
    # Given an engine whose clock moved by an hour
    with LocalEngine(fixtures_dir) as engine:  # type: ignore[arg-type]
        engine.advance_clock(3600)
        assert wall_ahead_of_monotonic() - real == pytest.approx(3600, abs=1)

    # When it has stopped, then the process's wall clock is the machine's again
    assert wall_ahead_of_monotonic() - real == pytest.approx(0, abs=1)
