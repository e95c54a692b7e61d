"""The instance's memory budget at preflight and the limits Redis runs under (host/budget.py):
pure, from a HostState as the inspect reports it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from redis_migration.errors import InvalidInput
from redis_migration.host.budget import assess_budget, margin, redis_resident
from redis_migration.host.install import InstallParameters, script_arguments
from redis_migration.host.state import compare_host
from redis_migration.models import (
    HostState,
    InspectHostInput,
    RedisLimits,
    StackSettings,
    load_settings,
    parse_model,
)
from redis_migration.steps.validate_input import validate_input
from redis_migration.watch.host_health import HostHealthInput

MIB = 1024**2
GIB = 1024**3
SETTINGS: StackSettings = load_settings(
    {
        "PROJECT_NAME": "campaign-system",
        "ENVIRONMENT": "dev",
        "INSTANCE_ID": "i-0123456789abcdef0",
        "ELASTICACHE_ENDPOINT": "cache.abc123.use1.cache.amazonaws.com",
    }
)


def asterisk(**changes: Any) -> dict[str, Any]:
    unit: dict[str, Any] = {
        "unit": "asterisk.service",
        "loadState": "loaded",
        "activeState": "active",
        "mainPid": 900,
        "nRestarts": 0,
        "activeEnterUs": 5_000_000,
        "rssBytes": 600 * MIB,
        "processes": 1,
        "cpuWeight": None,
        "ioWeight": None,
        "oomScoreAdj": 0,
        "required": False,
    }
    unit.update(changes)
    return unit


def host(memory: int = 4 * GIB, *co_tenants: dict[str, Any], **machine: Any) -> HostState:
    """An instance with ``memory`` of RAM and the given co-tenants, as the inspect reports it."""
    return HostState.model_validate(
        {
            "memTotalBytes": memory,
            "machine": {"memTotalBytes": memory, "swapTotalBytes": 0, "cpus": 2, **machine},
            "coTenants": list(co_tenants),
        }
    )


def test_redis_and_its_fork_fit_beside_asterisk_and_get_limits_that_make_them_yield() -> None:
    # Given a 4 GiB instance where Asterisk holds 600 MiB, and the guide's 512mb
    assessment = assess_budget(host(4 * GIB, asterisk()), "512mb")

    # Then it fits, with each figure of the sum
    budget = assessment.budget
    assert budget is not None
    assert assessment.problems == []
    assert budget.redis_resident == 512 * MIB * 5 // 4 + 32 * MIB
    assert budget.fork_worst_case == 512 * MIB
    assert budget.co_tenant_rss == {"asterisk.service": 600 * MIB}
    assert budget.margin == 4 * GIB // 10 + 1  # 10 %, rounded up
    assert budget.needed == budget.redis_resident + budget.fork_worst_case + 600 * MIB + budget.margin
    assert budget.fits
    # And Redis's limits: its whole share at most, throttled halfway into the fork's room, half
    # the weights of Asterisk (systemd's default 100), and first for the OOM killer
    assert assessment.limits == RedisLimits(
        memory_high=budget.redis_resident + 256 * MIB,
        memory_max=budget.redis_resident + 512 * MIB,
        cpu_weight=50,
        io_weight=50,
        oom_score_adjust=1000,
    )


def test_a_maxmemory_that_does_not_fit_is_refused_naming_each_figure_and_the_ways_on() -> None:
    # Given a 2 GiB instance where Asterisk holds 600 MiB and the worker 200 MiB
    worker = asterisk(unit="campaign-worker.service", rssBytes=200 * MIB, required=True)
    state = host(2 * GIB, asterisk(), worker)

    # When the run asks for 512mb
    assessment = assess_budget(state, "512mb")

    # Then it is refused, the message names the field, every figure and the ways on
    assert len(assessment.problems) == 1
    problem = assessment.problems[0]
    assert problem.startswith("maxmemory: 512mb does not fit")
    for figure in ("Redis 672.0 MiB", "fork's worst case 512.0 MiB", "co-tenants 800.0 MiB",
                   "asterisk.service 600.0 MiB", "campaign-worker.service 200.0 MiB",
                   "margin 256.0 MiB", "= 2.2 GiB", "instance's 2.0 GiB"):  # fmt: skip
        assert figure in problem, figure
    assert "a smaller maxmemory (at most" in problem
    assert "a larger instance (at least" in problem
    assert "saving less often makes the fork rarer, not smaller" in problem
    # And the smaller maxmemory it proposes does fit, and a larger instance as named too
    largest = int(re.search(r"at most (\d+)mb fits", problem).group(1))  # type: ignore[union-attr]
    assert assess_budget(state, f"{largest}mb").problems == []
    assert assess_budget(state, f"{largest + 1}mb").problems != []
    bigger = assessment.budget.smallest_instance if assessment.budget else 0
    grown = HostState.model_validate(
        {**state.model_dump(by_alias=True), "machine": {"memTotalBytes": bigger}}
    )
    assert assess_budget(grown, "512mb").problems == []


def test_a_named_co_tenant_missing_from_the_instance_is_refused_an_absent_default_is_not() -> None:
    missing = {"unit": "telephony.service", "loadState": "not-found", "required": True}
    assessment = assess_budget(host(8 * GIB, missing), "512mb")
    assert assessment.problems == [
        "coTenants: telephony.service is not a service on the instance (systemd: not-found); "
        "name the units that run there"
    ]
    # A stopped co-tenant holds no memory: warned, not counted
    stopped = assess_budget(host(8 * GIB, asterisk(activeState="inactive", rssBytes=None)), "512mb")
    assert stopped.problems == []
    assert stopped.budget is not None
    assert stopped.budget.co_tenants == 0
    assert "asterisk.service is inactive" in stopped.warnings[0]


def test_redis_yields_to_the_lowest_weight_and_outranks_a_protected_co_tenant_for_the_oom_killer() -> None:
    state = host(
        8 * GIB,
        asterisk(cpuWeight=400, ioWeight=30, oomScoreAdj=-500),
        asterisk(unit="worker.service", cpuWeight=None, ioWeight=1, oomScoreAdj=0),
    )
    limits = assess_budget(state, "512mb").limits
    assert limits is not None
    assert (limits.cpu_weight, limits.io_weight, limits.oom_score_adjust) == (50, 1, 1000)
    only_protected = assess_budget(host(8 * GIB, asterisk(oomScoreAdj=-500)), "512mb").limits
    assert only_protected is not None
    assert only_protected.oom_score_adjust == 500


def test_a_co_tenant_more_killable_than_redis_can_be_and_swap_are_warned_about() -> None:
    assessment = assess_budget(host(8 * GIB, asterisk(oomScoreAdj=300), swapTotalBytes=GIB, cpus=1), "512mb")
    assert assessment.problems == []
    warnings = " | ".join(assessment.warnings)
    assert "oom_score_adj 300" in warnings
    assert "1.0 GiB of swap" in warnings
    assert "one CPU" in warnings


def test_without_the_instances_figures_there_is_no_budget_and_no_limits_said_so() -> None:
    assessment = assess_budget(HostState(mem_total_bytes=4 * GIB), "512mb")
    assert (assessment.budget, assessment.limits, assessment.problems) == (None, None, [])
    assert "no memory budget" in assessment.warnings[0]


def test_the_figures_behind_the_budget() -> None:
    assert redis_resident(64 * MIB) == 80 * MIB + 32 * MIB
    assert margin(GIB) == 256 * MIB
    assert margin(16 * GIB) == int(1.6 * GIB) + 1


def test_co_tenants_are_named_or_default_to_asterisk_when_present_and_the_host_services() -> None:
    defaults = validate_input({"hostServices": ["campaign-worker"]}, SETTINGS)
    assert (defaults.co_tenants, defaults.co_tenants_if_present) == (
        ["campaign-worker.service"],
        ["asterisk.service"],
    )
    named = validate_input({"coTenants": ["asterisk", "node-worker.service"]}, SETTINGS)
    assert (named.co_tenants, named.co_tenants_if_present) == (
        ["asterisk.service", "node-worker.service"],
        [],
    )
    none = validate_input({"coTenants": []}, SETTINGS)
    assert (none.co_tenants, none.co_tenants_if_present) == ([], [])


@pytest.mark.parametrize(
    ("units", "reason"),
    [
        (["asterisk.timer"], "coTenants: Value error, [0]: 'asterisk.timer' is a .timer unit"),
        (["redis-server"], "is the Redis server itself"),
        (["asterisk", "asterisk.service"], "[1]: 'asterisk.service' is listed twice"),
        (["bad unit"], "coTenants.0: String should match pattern"),
        ("asterisk", "coTenants: Input should be a valid list"),
    ],
)
def test_bad_co_tenants_are_refused_naming_the_field(units: object, reason: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_input({"coTenants": units}, SETTINGS)
    assert reason in str(raised.value)
    assert "coTenants" in str(raised.value)


def test_the_limits_go_to_the_install_script_and_are_part_of_the_host_as_before() -> None:
    limits = RedisLimits(memory_high=700 * MIB, memory_max=900 * MIB, cpu_weight=50, io_weight=50,
                         oom_score_adjust=1000)  # fmt: skip
    arguments = script_arguments(
        InstallParameters(bind_addresses=["127.0.0.1"], password_sha256="0" * 64, limits=limits)
    )
    assert arguments[-10:] == [
        "--memory-high", str(700 * MIB), "--memory-max", str(900 * MIB), "--cpu-weight", "50",
        "--io-weight", "50", "--oom-score-adjust", "1000",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="memoryHigh must not be above memoryMax"):
        RedisLimits(
            memory_high=900 * MIB, memory_max=700 * MIB, cpu_weight=50, io_weight=50, oom_score_adjust=0
        )
    before = HostState()
    after = HostState.model_validate({"limits": {"dropInSha256": "a" * 64, "memoryMax": 900 * MIB}})
    assert compare_host(before, after) == [
        f"limits drop-in sha256: none before, {'a' * 64} after",
        f"unit memory max: none before, {900 * MIB} after",
    ]


def test_the_steps_take_service_units_only_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"HostHealthInput: coTenants\.0: String should match pattern"):
        parse_model(HostHealthInput, {"instanceId": "i-0123456789abcdef0", "coTenants": ["asterisk; reboot"]})
    with pytest.raises(InvalidInput, match=r"InspectHostInput: coTenantsIfPresent\.0"):
        parse_model(InspectHostInput, {"instanceId": "i-1", "port": 6379, "coTenantsIfPresent": ["asterisk"]})
