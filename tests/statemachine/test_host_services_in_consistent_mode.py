"""Host services in the consistent data mode, through the real ASL: the worker on the instance is
stopped with the freeze (StopHostServices, after FreezeWriters, before the changes are copied),
started by CutOverHostServices only on the self-hosted Redis, and after a failure started again
exactly as it was, on ElastiCache.

The worker appends the REDIS_HOST it starts with to a file at every start, so the test sees each
start of the whole run, not only the last one.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest

from redis_migration_ops.local_engine import INJECTED_ERROR
from redis_migration_ops.rehearsal.migration import LocalSetup, RunResult
from tests.host.test_host_services import ENV_FILE_TEXT
from tests.statemachine.conftest import assert_calls_allowed_and_each_statement_needed, differences
from tests.statemachine.test_host_services_steps import TARGET, add_worker, invoke

WORKER = "campaign-worker"
UNIT = f"{WORKER}.service"
ELASTICACHE_HOST = "master.campaign-redis.abc123.use1.cache.amazonaws.com"
CONSISTENT_WITH_WORKER = {"dataCopy": "consistent", "hostServices": [WORKER]}


def add_counting_worker(setup: LocalSetup) -> None:
    """The guide's worker, running on ElastiCache, that logs the REDIS_HOST of each start."""
    setup.sandbox.host_path(f"/etc/systemd/system/{UNIT}").write_text(
        "\n".join(
            [
                "[Unit]",
                "Description=campaign worker (test: logs each start)",
                "[Service]",
                "Type=simple",
                f"EnvironmentFile=/etc/default/{WORKER}",
                f"ExecStart=/bin/sh -c 'echo \"$REDIS_HOST\" >> /run/{WORKER}.starts; exec sleep 3600'",
                "[Install]",
                "WantedBy=multi-user.target",
                "",
            ]
        )
    )
    setup.sandbox.host_path(f"/etc/default/{WORKER}").write_text(ENV_FILE_TEXT)
    assert setup.sandbox.run_command([f"systemctl start {WORKER}"], 30).exit_code == 0
    # Type=simple: `systemctl start` returns once the process is forked, before its first line.
    deadline = time.monotonic() + 10
    while not starts(setup) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert starts(setup) == [ELASTICACHE_HOST]


def starts(setup: LocalSetup) -> list[str]:
    """The REDIS_HOST of every start of the worker so far, in order."""
    log = setup.sandbox.host_path(f"/run/{WORKER}.starts")
    return log.read_text().split() if log.exists() else []


def unit_results(run: RunResult, state: str) -> list[dict[str, Any]]:
    """The units of every successful invocation of top-level Task ``state`` (a host-services
    step), in order."""
    return [
        unit for result in task_results(run, state) for entry in result["files"] for unit in entry["units"]
    ]


def task_results(run: RunResult, state: str) -> list[Any]:
    """The Payload of each successful invocation of top-level Task ``state``, in order."""
    results: list[Any] = []
    current = None
    for event in run.history:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        details = event.get("taskSucceededEventDetails")
        if details and current == state:
            results.append(json.loads(details["output"])["Payload"])
    return results


def test_a_consistent_migration_stops_the_worker_for_the_freeze_and_starts_it_only_switched(
    setup: LocalSetup,
) -> None:
    # Given keys on ElastiCache and the worker writing to it
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(300)
    add_counting_worker(setup)
    before = setup.snapshot()
    assert before.service_units[UNIT] == "active"

    # When a consistent migration runs with it
    run = setup.run(CONSISTENT_WITH_WORKER, name="consistent-with-worker")

    # Then it is migrated
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    assert run.output["outcome"] == "migrated"
    # ... the worker was stopped after the functions were frozen and before the changes were copied
    entered = run.states_entered
    stop = entered.index("StopHostServices")
    assert entered.index("FreezeWriters") < stop < entered.index("WaitForWritersToFinish")
    assert "CopyData" in entered[stop:]
    assert stop < entered.index("VerifyData") < entered.index("CutOverHostServices")
    assert entered.index("CutOverHostServices") < entered.index("UnfreezeWriters")
    (stopped,) = unit_results(run, "StopHostServices")
    assert (stopped["unit"], stopped["stopped"], stopped["active"]) == (UNIT, True, "inactive")
    # ... and started by the switch (not restarted: nothing started it in between), on the
    # self-hosted Redis: its only start since the one before the run
    (switched,) = unit_results(run, "CutOverHostServices")
    assert (switched["started"], switched["restarted"], switched["active"]) == (True, False, "active")
    assert starts(setup) == [ELASTICACHE_HOST, "127.0.0.1"]
    after = setup.snapshot()
    assert after.service_units[UNIT] == "active"
    assert "REDIS_HOST=127.0.0.1\n" in after.services[f"/etc/default/{WORKER}"]


@pytest.mark.parametrize(("state", "nth"), [("VerifyData", 1), ("CutOverFunction", 2)])
def test_a_failure_after_the_stop_leaves_the_worker_running_on_elasticache_as_before(
    setup: LocalSetup, state: str, nth: int
) -> None:
    # Given the worker running on ElastiCache, and a failure after it was stopped for the freeze
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(300)
    add_counting_worker(setup)
    setup.engine.fail_at(state, nth)
    before = setup.snapshot()

    # When a consistent migration runs
    run = setup.run(CONSISTENT_WITH_WORKER, name=f"fail-at-{state}-with-worker")

    # Then it failed with the original error and everything is as before, the worker included
    assert run.described["status"] == "FAILED"
    assert run.described.get("error") == INJECTED_ERROR, run.described.get("cause")
    entered = run.states_entered
    assert entered.index("StopHostServices") < entered.index(
        state.replace("CutOverFunction", "CutOverFunctions")
    )
    assert "RestoreHostServices" in entered
    assert "CutOverHostServices" not in entered
    after = setup.snapshot()
    assert after == before, differences(before, after)
    assert after.service_units[UNIT] == "active"
    # ... it was started again by the restore, on ElastiCache, and never on the self-hosted Redis
    assert starts(setup) == [ELASTICACHE_HOST, ELASTICACHE_HOST]
    (restored,) = unit_results(run, "RestoreHostServices")
    assert restored["started"]


def test_the_stop_step_alone_is_a_difference_from_before_and_uses_only_allowed_calls(
    setup: LocalSetup,
) -> None:
    # Given the worker running
    add_counting_worker(setup)
    before = setup.snapshot()
    given = {
        "instanceId": setup.account.instance_id,
        "runId": "migration-stop",
        "services": [WORKER],
        "target": TARGET,
    }

    # When StopHostServices runs (twice: a retry)
    error, stopped = invoke(setup, "StopHostServicesFunction", given)
    assert error is None, stopped
    error, again = invoke(setup, "StopHostServicesFunction", given)
    assert error is None, again

    # Then the worker is stopped, and "as before" sees it: a service left stopped is a difference
    assert stopped["changed"]
    assert not again["changed"]
    stopped_world = setup.snapshot()
    assert stopped_world.services == before.services
    assert f"host service {UNIT}: active -> inactive" in before.differences(stopped_world)
    assert stopped_world != before
    # ... and the restore brings it back exactly
    error, restored = invoke(
        setup,
        "RestoreHostServicesFunction",
        {"instanceId": setup.account.instance_id, "runIds": ["migration-stop"]},
    )
    assert error is None, restored
    assert setup.snapshot() == before
    assert starts(setup) == [ELASTICACHE_HOST, ELASTICACHE_HOST]
    # ... with only the calls its template statements allow, each of them needed
    actions = assert_calls_allowed_and_each_statement_needed(setup.engine, {"StopHostServicesFunction"})
    assert actions == {"ssm:SendCommand", "ssm:GetCommandInvocation"}


def test_a_stop_that_fails_part_way_is_undone_by_the_rollback(setup: LocalSetup) -> None:
    # Given two workers, and the host unable to record the second one's stop (its record's
    # "stopped" entry cannot be written): the stop fails after it stopped the first
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(300)
    add_counting_worker(setup)
    add_worker(setup, "dialer-worker")
    name = "stop-fails-part-way"
    record = setup.sandbox.host_path(
        f"/var/lib/redis-migration/runs/{name}/services/"
        + hashlib.sha256(b"/etc/default/dialer-worker").hexdigest()[:16]
    )
    record.mkdir(parents=True)
    (record / "before").write_text(ENV_FILE_TEXT)
    (record / "state").write_text("ENV_FILE=/etc/default/dialer-worker\nUNIT=dialer-worker.service active\n")
    (record / "stopped").mkdir()
    before = setup.snapshot()

    # When a consistent migration runs with both
    run = setup.run({"dataCopy": "consistent", "hostServices": [WORKER, "dialer-worker"]}, name=name)

    # Then the stop's own error ends the run, and the rollback started the first worker again
    assert run.described["status"] == "FAILED"
    assert run.described.get("error") == "HostServicesFailed", run.described.get("cause")
    assert "RecordFailed" in str(run.described.get("cause"))
    after = setup.snapshot()
    assert after == before, differences(before, after)
    assert "RestoreHostServices" in run.states_entered
    assert starts(setup) == [ELASTICACHE_HOST, ELASTICACHE_HOST]
