"""The instance's memory budget at preflight, and the limits Redis runs under.

Redis shares the instance with services that come first: the guide's Asterisk, which carries live
calls, and the team's worker. Pure: :func:`assess_budget` judges a
:class:`~redis_migration.models.HostState` from the read-only inspect (which reads the instance's
memory, swap and CPUs, and each co-tenant's processes) against the run's ``maxmemory``.

The budget, in the order the refusal names it:

- **Redis resident**: ``maxmemory`` x 1.25 + 32 MiB. ``maxmemory`` bounds Redis's dataset
  (``used_memory``), not its process: the allocator's fragmentation, client output buffers and
  the AOF rewrite buffer come on top (:data:`REDIS_OVERHEAD_SHARE`), and an empty server with its
  Lua engine holds a few MiB (:data:`REDIS_BASE_BYTES`).
- **The fork's worst case**: ``maxmemory`` again. A BGSAVE (``save 300 1``) and an AOF rewrite
  fork; parent and child share the dataset's pages copy-on-write, and every page the parent writes
  while the child saves is copied: "while saving an RDB file on disk or rewriting the AOF log
  Redis may use up to 2 times the memory normally used" (https://redis.io/topics/faq,
  https://redis.io/docs/latest/operate/oss_and_stack/management/admin/). Under writes to every
  key, the copy is the whole dataset.
- **The co-tenants' resident memory**: VmRSS of every process of each co-tenant unit, now.
- **A margin**: the larger of 256 MiB and 10 % of the instance, for the kernel, the page cache
  the co-tenants live on (Asterisk's sounds and logs), the agents, and the co-tenants' growth.

The run is refused when their sum exceeds the instance's memory (MemTotal), naming each figure and
the ways on. Swap is reported, never counted as room: a co-tenant swapped out is as late as one
that has no memory.

The limits (:class:`~redis_migration.models.RedisLimits`, a systemd drop-in written by the
install; systemd.resource-control(5), https://man7.org/linux/man-pages/man5/systemd.resource-control.5.html):

- ``MemoryMax`` = Redis resident + the fork's worst case: Redis's whole share. Past it the kernel
  reclaims Redis's own pages and then OOM-kills inside Redis's cgroup, never outside it.
- ``MemoryHigh`` = Redis resident + half the fork's worst case: past it the kernel throttles
  Redis's allocations and reclaims its page cache (the RDB and AOF it writes) first, long before
  the co-tenants feel it.
- ``CPUWeight`` and ``IOWeight``: half the lowest co-tenant's (systemd's default, 100, for one
  that sets none), at least 1: when the CPU or the disk is contended, a save or a copy gets
  less than the co-tenants.
- ``OOMScoreAdjust``: the highest co-tenant's ``oom_score_adj`` + 1000, at most 1000. The kernel's
  OOM killer picks the highest badness (resident share of memory in 0-1000, plus
  ``oom_score_adj``, https://man7.org/linux/man-pages/man5/proc_pid_oom_score_adj.5.html): with
  1000 more than a co-tenant, Redis outranks it whatever either holds.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from redis_migration.models import (
    MIN_MAXMEMORY_BYTES,
    CoTenantFacts,
    HostState,
    MemoryBudget,
    RedisLimits,
    format_bytes,
    parse_memory_size,
)

MIB = 1024**2
REDIS_OVERHEAD_SHARE = 0.25
REDIS_BASE_BYTES = 32 * MIB
MARGIN_SHARE = 0.10
MARGIN_MIN_BYTES = 256 * MIB
# systemd's default CPUWeight and IOWeight (a unit that sets none).
DEFAULT_WEIGHT = 100
MAX_OOM_SCORE_ADJ = 1000
# Co-tenants named in a refusal (the budget record has them all).
NAMED_CO_TENANTS = 5


class BudgetAssessment(BaseModel):
    """What :func:`assess_budget` found: the budget and limits, ``problems`` that refuse the run,
    ``warnings`` that are reported."""

    model_config = ConfigDict(frozen=True)

    budget: MemoryBudget | None = None
    limits: RedisLimits | None = None
    problems: list[str] = []
    warnings: list[str] = []


def redis_resident(maxmemory: int) -> int:
    """What Redis's process holds at ``maxmemory`` (dataset, overhead, the empty server)."""
    return math.ceil(maxmemory * (1 + REDIS_OVERHEAD_SHARE)) + REDIS_BASE_BYTES


def margin(instance: int) -> int:
    """The memory kept for the kernel, the page cache and the co-tenants' growth."""
    return max(MARGIN_MIN_BYTES, math.ceil(instance * MARGIN_SHARE))


def largest_maxmemory(instance: int, co_tenants: int) -> int:
    """The largest maxmemory (whole MiB) whose Redis, fork and all fit beside the co-tenants."""
    room = instance - margin(instance) - co_tenants - REDIS_BASE_BYTES
    # resident + fork = maxmemory x (2 + overhead share) + base
    return max(0, int(room / (2 + REDIS_OVERHEAD_SHARE)) // MIB * MIB)


def smallest_instance(redis_and_fork: int, co_tenants: int) -> int:
    """The least memory an instance needs for these figures (the margin grows with it)."""
    held = redis_and_fork + co_tenants
    return max(held + MARGIN_MIN_BYTES, math.ceil(held / (1 - MARGIN_SHARE)))


def _weight(value: int | None) -> int:
    return DEFAULT_WEIGHT if value is None else value


def redis_limits(budget: MemoryBudget, co_tenants: list[CoTenantFacts]) -> RedisLimits:
    """The drop-in for Redis's unit that keeps it inside its share and behind the co-tenants."""
    present = [unit for unit in co_tenants if unit.load_state == "loaded"]
    lowest_cpu = min((_weight(unit.cpu_weight) for unit in present), default=DEFAULT_WEIGHT)
    lowest_io = min((_weight(unit.io_weight) for unit in present), default=DEFAULT_WEIGHT)
    highest_oom = max((unit.oom_score_adj or 0 for unit in present), default=0)
    return RedisLimits(
        memory_high=budget.redis_resident + budget.fork_worst_case // 2,
        memory_max=budget.redis_resident + budget.fork_worst_case,
        cpu_weight=max(1, lowest_cpu // 2),
        io_weight=max(1, lowest_io // 2),
        oom_score_adjust=min(MAX_OOM_SCORE_ADJ, highest_oom + MAX_OOM_SCORE_ADJ),
    )


def assess_budget(state: HostState, maxmemory: str | int) -> BudgetAssessment:
    """The instance's budget for ``maxmemory`` beside the co-tenants ``state`` reports, its limits,
    and what refuses the run. Pure: no I/O. A host read without the instance's figures (an
    inspect of an older version) gets neither budget nor limits, with a warning."""
    problems: list[str] = []
    warnings: list[str] = []
    for unit in state.co_tenants:
        if unit.required and unit.load_state != "loaded":
            problems.append(
                f"coTenants: {unit.unit} is not a service on the instance "
                f"(systemd: {unit.load_state or 'no such unit'}); name the units that run there"
            )
        elif unit.load_state == "loaded" and unit.active_state != "active":
            warnings.append(
                f"coTenants: {unit.unit} is {unit.active_state or 'not running'}; its memory is not in "
                "the budget and the bake watches it only once it runs"
            )
    machine = state.machine
    instance = machine.mem_total_bytes if machine is not None else None
    if instance is None:
        warnings.append(
            "instanceId: the instance's memory was not read; no memory budget, no limits for Redis"
        )
        return BudgetAssessment(problems=problems, warnings=warnings)
    try:
        size = parse_memory_size(maxmemory)
    except ValueError:
        return BudgetAssessment(problems=problems, warnings=warnings)  # named by the host rules
    rss = {unit.unit: unit.rss_bytes or 0 for unit in state.co_tenants if unit.active_state == "active"}
    held = sum(rss.values())
    resident = redis_resident(size)
    needed = resident + size + held + margin(instance)
    budget = MemoryBudget(
        instance=instance,
        maxmemory=size,
        redis_resident=resident,
        fork_worst_case=size,
        co_tenants=held,
        co_tenant_rss=rss,
        margin=margin(instance),
        needed=needed,
        fits=needed <= instance,
        largest_maxmemory=largest_maxmemory(instance, held),
        smallest_instance=smallest_instance(resident + size, held),
        swap=machine.swap_total_bytes if machine is not None else None,
        cpus=machine.cpus if machine is not None else None,
    )
    if not budget.fits:
        problems.append(refusal(maxmemory, budget))
    warnings += _machine_warnings(budget)
    highest = max((unit.oom_score_adj or 0 for unit in state.co_tenants), default=0)
    if highest > 0:
        warnings.append(
            f"coTenants: a co-tenant runs with oom_score_adj {highest}; Redis (at most 1000) cannot "
            "be sure to go first when the kernel runs out of memory"
        )
    return BudgetAssessment(
        budget=budget, limits=redis_limits(budget, state.co_tenants), problems=problems, warnings=warnings
    )


def refusal(maxmemory: str | int, budget: MemoryBudget) -> str:
    """The refusal: every figure of the sum, and the ways on."""
    named = sorted(budget.co_tenant_rss.items(), key=lambda item: -item[1])
    units = ", ".join(f"{unit} {format_bytes(rss)}" for unit, rss in named[:NAMED_CO_TENANTS])
    more = f", +{len(named) - NAMED_CO_TENANTS} more" if len(named) > NAMED_CO_TENANTS else ""
    largest = budget.largest_maxmemory
    smaller = (
        f"a smaller maxmemory (at most {largest // MIB}mb fits)"
        if largest >= MIN_MAXMEMORY_BYTES
        else "a smaller maxmemory (none fits: even the 64mb floor does not)"
    )
    return (
        f"maxmemory: {maxmemory} does not fit beside what shares the instance: Redis "
        f"{format_bytes(budget.redis_resident)} (maxmemory plus its overhead) + the fork's worst case "
        f"{format_bytes(budget.fork_worst_case)} (a save or AOF rewrite copies every page written "
        f"meanwhile) + co-tenants {format_bytes(budget.co_tenants)}"
        f"{f' ({units}{more})' if units else ''} + margin {format_bytes(budget.margin)} = "
        f"{format_bytes(budget.needed)}, more than the instance's {format_bytes(budget.instance)}; "
        f"ways on: {smaller}, a larger instance (at least {format_bytes(budget.smallest_instance)} of "
        "memory), or fewer co-tenants; saving less often makes the fork rarer, not smaller (this "
        "workflow keeps the guide's RDB snapshots and AOF, and each save or rewrite forks)"
    )


def _machine_warnings(budget: MemoryBudget) -> list[str]:
    warnings = []
    if budget.swap:
        warnings.append(
            f"instanceId: the instance has {format_bytes(budget.swap)} of swap; it is not counted as "
            "room (a co-tenant swapped out is late), and the bake watches swapping"
        )
    if budget.cpus == 1:
        warnings.append(
            "instanceId: one CPU: a save, an AOF rewrite or the copy competes with the co-tenants for "
            "it; Redis's lower CPUWeight lets them go first"
        )
    return warnings


__all__ = [
    "BudgetAssessment",
    "assess_budget",
    "largest_maxmemory",
    "margin",
    "redis_limits",
    "redis_resident",
    "smallest_instance",
]
