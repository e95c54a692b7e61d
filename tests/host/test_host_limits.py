"""Redis's limits on the shared instance, on the sandbox host: the install's systemd drop-in, applied
by the sandbox's systemd stand-in to a real cgroup and to the process, read back by the inspect and
independently, reverted with the host; and the bake's reading of the instance and its co-tenant.

One scenario on one sandbox (the tests run in order): the sandbox runs the co-tenant, a stand-in
for Asterisk, as ``asterisk.service``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis_migration.host.install import InstallParameters
from redis_migration.host.revert import build_revert_commands, parse_revert_result
from redis_migration.host.state import build_inspect_commands, compare_host, parse_inspect_result
from redis_migration.models import BakeThresholds, HostState, RedisLimits
from redis_migration.watch.host_health import build_host_health_commands, host_findings, parse_host_health

from redis_migration_ops.local_engine.sandbox_host import SandboxHost
from redis_migration_ops.rehearsal.cotenant import cotenant_pid, install_cotenant
from redis_migration_ops.rehearsal.sandbox_redis import read_unit_limits
from tests.host.conftest import RunInstall

pytestmark = pytest.mark.host

MIB = 1024**2
LIMITS = RedisLimits(
    memory_high=160 * MIB, memory_max=208 * MIB, cpu_weight=50, io_weight=50, oom_score_adjust=1000
)
REDIS_CGROUP = "/system.slice/redis-server.service"
COTENANT_CGROUP = "/system.slice/asterisk.service"
V1_NO_LIMIT = 2**62  # memory.limit_in_bytes of an unlimited v1 cgroup is about 2^63


@pytest.fixture(scope="module")
def co_tenant(sandbox: SandboxHost) -> int:
    if "memory" not in sandbox.cgroup_controllers:
        pytest.skip(f"the sandbox has no cgroup v1 memory controller here ({sandbox.cgroup_controllers})")
    return install_cotenant(sandbox)


def inspect(sandbox: SandboxHost) -> HostState:
    commands = build_inspect_commands(6379, co_tenants_if_present=["asterisk.service"])
    result = parse_inspect_result(sandbox.run_command(commands, 120).stdout)
    assert result is not None
    assert result.ok, result.message
    assert result.state is not None
    return result.state


def machine_pid(sandbox: SandboxHost, unit: str) -> int:
    pid = sandbox.service_main_pid(unit)
    assert pid is not None
    return pid


def test_the_limits_are_applied_to_redis_alone_read_back_and_reverted_with_the_host(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters, co_tenant: int
) -> None:
    # Given the instance with its co-tenant running, before any install
    before = inspect(sandbox)
    assert [(unit.unit, unit.main_pid) for unit in before.co_tenants] == [("asterisk.service", co_tenant)]
    assert before.limits.drop_in is None

    # When the install runs with the budget's limits (twice: a retry)
    params = install_params.model_copy(update={"run_id": "limits-1", "limits": LIMITS})
    _, installed = run_install(params)
    after = inspect(sandbox)
    _, again = run_install(params)

    # Then the drop-in is there, systemd reports it, and the kernel applies it to Redis's cgroup
    # and process: read from the machine's cgroup files and /proc, not from the scripts
    assert installed is not None
    assert installed.ok, installed.message
    assert installed.limits_changed
    dropin = sandbox.host_path("/etc/systemd/system/redis-server.service.d/60-redis-migration-limits.conf")
    assert "MemoryMax=218103808\n" in dropin.read_text()
    limits = after.limits
    configured = (limits.memory_high, limits.memory_max, limits.cpu_weight, limits.io_weight)
    assert configured == (LIMITS.memory_high, LIMITS.memory_max, 50, 50)
    assert limits.oom_score_adjust == 1000
    redis_memory = sandbox.cgroup_path("memory", REDIS_CGROUP)
    redis_cpu = sandbox.cgroup_path("cpu", REDIS_CGROUP)
    assert redis_memory is not None
    assert redis_cpu is not None
    redis_pid = machine_pid(sandbox, "redis-server")
    assert str(redis_pid) in (redis_memory / "cgroup.procs").read_text().split()
    assert int((redis_memory / "memory.limit_in_bytes").read_text()) == LIMITS.memory_max
    assert int((redis_cpu / "cpu.shares").read_text()) == 512  # CPUWeight 50 x 1024 / 100
    assert Path(f"/proc/{redis_pid}/oom_score_adj").read_text().strip() == "1000"
    assert (limits.applied_memory_max, limits.applied_cpu_weight, limits.applied_oom_score_adj) == (
        LIMITS.memory_max, 50, 1000
    )  # fmt: skip
    # ... MemoryHigh has no cgroup v1 counterpart (systemd does not apply it there), nor does
    # IOWeight without blkio.weight: read back as not applied, not as applied
    assert limits.applied_memory_high is None
    assert limits.applied_io_weight is None
    # ... and the rehearsal's own reader (systemctl show, the cgroup, /proc) says the same
    assert read_unit_limits(sandbox, after.service.main_pid) == limits
    # The co-tenant is in a cgroup of its own, without a limit, with the kernel's default score
    cotenant_memory = sandbox.cgroup_path("memory", COTENANT_CGROUP)
    assert cotenant_memory is not None
    cotenant_pid_now = machine_pid(sandbox, "asterisk")
    assert str(cotenant_pid_now) in (cotenant_memory / "cgroup.procs").read_text().split()
    assert int((cotenant_memory / "memory.limit_in_bytes").read_text()) > V1_NO_LIMIT
    assert Path(f"/proc/{cotenant_pid_now}/oom_score_adj").read_text().strip() == "0"
    [asterisk] = after.co_tenants
    assert asterisk.rss_bytes is not None
    assert asterisk.rss_bytes > 16 * MIB  # the memory it holds, resident
    # A retry changes nothing
    assert again is not None
    assert (again.changed, again.limits_changed) == (False, False)

    # When the host's compensation runs
    reverted = parse_revert_result(sandbox.run_command(build_revert_commands("limits-1"), 120).stdout)

    # Then the drop-in is gone and the host is as before; the co-tenant never noticed
    assert reverted is not None
    assert reverted.ok, reverted.message
    assert reverted.after is not None
    assert reverted.after.limits.drop_in is None
    assert not dropin.exists()
    assert compare_host(before, reverted.after) == []
    assert cotenant_pid(sandbox) == co_tenant


def test_the_limits_changed_alone_restart_redis_onto_them_and_the_revert_restarts_it_without(
    sandbox: SandboxHost, run_install: RunInstall, install_params: InstallParameters, co_tenant: int
) -> None:
    # Given Redis installed without limits (an earlier run), running
    _, plain = run_install(install_params.model_copy(update={"run_id": "plain-1"}))
    assert plain is not None
    assert plain.ok, plain.message
    before = inspect(sandbox)
    assert before.limits.applied_oom_score_adj == 0

    # When a run adds the limits, then is reverted
    _, limited = run_install(install_params.model_copy(update={"run_id": "limits-2", "limits": LIMITS}))
    during = inspect(sandbox)
    reverted = parse_revert_result(sandbox.run_command(build_revert_commands("limits-2"), 120).stdout)

    # Then Redis ran under them, and runs without them again, its data kept
    assert limited is not None
    assert limited.limits_changed
    assert during.service.main_pid != before.service.main_pid
    assert during.limits.applied_memory_max == LIMITS.memory_max
    assert during.limits.applied_oom_score_adj == 1000
    assert reverted is not None
    assert reverted.ok, reverted.message
    assert reverted.service_action == "restarted"
    assert reverted.after is not None
    assert reverted.after.limits.applied_oom_score_adj == 0
    assert reverted.after.limits.applied_memory_max is None  # unlimited again
    assert compare_host(before, reverted.after) == []
    assert cotenant_pid(sandbox) == co_tenant


def test_the_bakes_reading_sees_the_co_tenant_stop_and_restart(sandbox: SandboxHost, co_tenant: int) -> None:
    def read() -> tuple[str | None, str]:
        commands = build_host_health_commands(["asterisk.service"])
        reading = parse_host_health(sandbox.run_command(commands, 30).stdout)
        assert reading is not None
        assert reading.ok
        assert reading.machine is not None
        assert reading.machine.mem_total_bytes
        [unit] = reading.co_tenants
        return unit.active_state, unit.mark

    # Given the co-tenant as the preflight saw it
    state, mark = read()
    assert state == "active"
    generous = BakeThresholds(load_per_cpu_margin=1000, memory_pressure_margin_percent=100)

    # When it stops, then starts again
    assert sandbox.run_command(["systemctl stop asterisk"], 60).exit_code == 0
    commands = build_host_health_commands(["asterisk.service"])
    stopped = parse_host_health(sandbox.run_command(commands, 30).stdout)
    assert sandbox.run_command(["systemctl start asterisk"], 60).exit_code == 0
    restarted_state, restarted_mark = read()

    # Then the bake would name it: down, then restarted
    assert stopped is not None
    marks = {"asterisk.service": mark}
    down = host_findings(stopped, before=None, previous=None, marks=marks, thresholds=generous)
    assert [(f.code, f.subject, f.detail) for f in down] == [
        ("CoTenantDown", "asterisk.service", "inactive (was active)")
    ]
    assert restarted_state == "active"
    assert restarted_mark != mark
