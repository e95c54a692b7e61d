"""The shared instance comes first, as the real ASL runs it: the preflight's budget, Redis's limits
read back from the sandbox's systemd and cgroups, and the bake watching the co-tenant.

The sandbox runs the co-tenant (``asterisk.service``, a stand-in for Asterisk that wakes every
20 ms); the workflow finds it as its default co-tenant, as on the guide's instance.
"""

from __future__ import annotations

from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.cotenant import cotenant_pid
from redis_migration_ops.rehearsal.migration import LocalSetup, fill_beside_the_co_tenant
from tests.statemachine.conftest import assert_calls_allowed_and_each_statement_needed, differences

BAKE_MINUTES = 2


def test_redis_runs_inside_its_budget_under_limits_read_back_and_the_bake_watches_the_co_tenant(
    setup: LocalSetup,
) -> None:
    # Given the instance with its co-tenant running
    before = setup.snapshot()
    assert before.host is not None
    assert before.host.limits.drop_in is None

    # When a migration runs with a bake
    run = setup.run({"bakeMinutes": BAKE_MINUTES}, name="shared-instance")
    after = setup.snapshot()

    # Then the preflight budgeted the co-tenant's memory beside Redis and its fork
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    plan = run.output["plan"]
    budget, limits = plan["budget"], plan["limits"]
    assert budget["fits"]
    assert budget["coTenantRss"]["asterisk.service"] > 16 * 1024**2
    assert budget["forkWorstCase"] == budget["maxmemory"] == 512 * 1024**2
    assert limits["memoryMax"] == budget["redisResident"] + budget["forkWorstCase"]
    assert (limits["cpuWeight"], limits["ioWeight"], limits["oomScoreAdjust"]) == (50, 50, 1000)
    # ... the limits are what the sandbox's systemd reports and what its cgroup and process carry
    applied = after.host.limits if after.host is not None else None
    assert applied is not None
    assert applied.drop_in is not None
    assert (applied.memory_max, applied.memory_high) == (limits["memoryMax"], limits["memoryHigh"])
    assert (applied.applied_memory_max, applied.applied_cpu_weight) == (limits["memoryMax"], 50)
    assert applied.applied_oom_score_adj == 1000
    # ... the bake read the instance at every check and found the co-tenant as it was
    assert "ReadHostHealth" in run.states_entered
    host = run.output["bake"]["host"]
    assert (host["read"], host["coTenants"], host["coTenantsActive"]) == (True, 1, 1)
    assert cotenant_pid(setup.sandbox) == setup.co_tenant_pid
    # ... through SSM, with only what its role allows, each statement needed
    actions = assert_calls_allowed_and_each_statement_needed(setup.engine, {"ReadHostHealthFunction"})
    assert actions == {"ssm:SendCommand", "ssm:GetCommandInvocation"}


def test_a_maxmemory_the_instance_cannot_hold_beside_its_co_tenant_is_refused_before_any_change(
    setup: LocalSetup,
) -> None:
    before = setup.snapshot()

    run = setup.run({"maxmemory": "20gb", "coTenants": ["asterisk", "node-worker"]}, name="too-big")

    after = setup.snapshot()
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "PreconditionFailed"
    cause = run.described["cause"]
    assert "maxmemory: 20gb does not fit beside what shares the instance" in cause
    assert "asterisk.service" in cause
    assert "a smaller maxmemory (at most" in cause
    assert "coTenants: node-worker.service is not a service on the instance" in cause
    assert "InstallRedis" not in run.states_entered
    assert before == after, differences(before, after)


def test_a_co_tenant_that_goes_down_during_the_bake_rolls_the_migration_back(setup: LocalSetup) -> None:
    # Given the co-tenant stops while the workflow waits between two checks of the bake
    def stop_the_co_tenant(wait: WaitRecord) -> None:
        if wait.state_name == "WaitForBake":
            setup.sandbox.run_command(["systemctl stop asterisk"], 60)

    setup.engine.on_wait(stop_the_co_tenant)
    before = setup.snapshot()

    # When the migration bakes
    run = setup.run({"bakeMinutes": BAKE_MINUTES}, name="co-tenant-down")
    after = setup.snapshot()

    # Then the bake names the co-tenant and the rollback puts everything back, the host included
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "BakeRegressed"
    assert "CoTenantDown asterisk.service" in run.described["cause"]
    assert "RevertRedisHost" in run.states_entered
    # (the co-tenant the test stopped stays stopped: not this run's to start)
    assert differences(before, after) == {
        "(services)": {
            "units": {
                "before": before.service_units,
                "after": {**before.service_units, "asterisk.service": "inactive"},
            }
        }
    }
    assert after.host is not None
    assert after.host.limits.drop_in is None


def test_redis_filled_to_its_maxmemory_and_saving_stays_inside_its_limit_beside_a_live_co_tenant(
    setup: LocalSetup,
) -> None:
    # Given a migration with the smallest maxmemory (the fill stays quick)
    run = setup.run({"maxmemory": "64mb"}, name="fill-maxmemory")
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    limits = run.output["plan"]["limits"]

    # When Redis is filled until it evicts, then saves (what `rehearse --fill-maxmemory` reports)
    filled = fill_beside_the_co_tenant(setup)

    # Then Redis reached its maxmemory and saved, within its cgroup's limit, no OOM kill anywhere,
    # and the co-tenant is the same process, still waking every 20 ms
    assert filled["evictedKeys"] > 0
    assert filled["saveStatus"] == "ok"
    cgroup = filled["redisMemoryCgroup"]
    assert cgroup["limitBytes"] == limits["memoryMax"]
    assert 64 * 1024**2 < cgroup["peakBytes"] <= limits["memoryMax"]
    assert cgroup["oomKills"] == 0
    assert filled["limits"]["appliedOomScoreAdj"] == 1000
    co_tenant = filled["coTenant"]
    assert co_tenant["alive"], co_tenant
    assert co_tenant["lateness"]["wakeups"] > 0
