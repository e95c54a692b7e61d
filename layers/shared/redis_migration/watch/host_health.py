"""The instance Redis shares, watched: co-tenants running and not restarted, memory pressure,
swapping, load.

``host/read_host_health.sh`` (sent with ``host/common.sh`` and ``host/machine_facts.sh``) reads
the instance (memory, swap, CPUs, the load averages, the swap counters, PSI) and each co-tenant
service (active or not, main pid, ``NRestarts``, when it last became active, resident memory). It
changes nothing and takes no lock. The bake reads it at every check (the ReadHostHealth state,
before CheckBake) and :func:`host_findings` compares it with the preflight's reading of the same
instance (InspectHostBefore, before anything changed):

- a co-tenant that was active is no longer (``CoTenantDown``) or restarted: its main pid, its last
  activation or its restart count changed (``CoTenantRestarted``). The services the run itself
  restarts (``hostServices``, switched by CutOverHostServices) are compared with their first
  reading in the bake instead;
- memory pressure: PSI ``some`` avg60, the share of the last minute in which at least one task
  waited for memory (https://docs.kernel.org/accounting/psi.html), above its preflight value by
  more than ``memoryPressureMarginPercent`` points (``MemoryPressure``): a voice stream that waits
  for a page is late;
- swapping: pages swapped in and out a second since the previous reading, above the instance's
  average since boot by more than ``swapPagesPerSecondMargin`` (``SwapActivity``);
- load: the 5-minute load average per CPU above its preflight value by more than
  ``loadPerCpuMargin`` (``HostLoad``). Five minutes rather than one: a burst of a minute is not a
  regression, a load that stays is (and in a rehearsal, on a machine shared with other work, the
  1-minute figure moves with whatever else runs).

A kernel without PSI (``psi=0``, or a build without it) has no memory pressure to compare: noted,
not a regression.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from redis_migration.host.scripts import script_command
from redis_migration.host.state import valid_service_unit
from redis_migration.models import (
    MAX_CO_TENANTS,
    SERVICE_UNIT_NAME,
    BakeThresholds,
    CoTenantFacts,
    HostFactsModel,
    MachineFacts,
    Model,
)

HOST_HEALTH_SCRIPT = "host/read_host_health.sh"
HOST_HEALTH_MARKER = "REDIS_HOST_HEALTH "

HostFindingCode = Literal["CoTenantDown", "CoTenantRestarted", "MemoryPressure", "SwapActivity", "HostLoad"]


class HostHealthInput(Model):
    """ReadHostHealth's input: the instance and the co-tenants the preflight found there."""

    instance_id: str
    co_tenants: Annotated[
        list[Annotated[str, Field(pattern=SERVICE_UNIT_NAME)]], Field(max_length=MAX_CO_TENANTS)
    ] = []


class HostHealthReading(HostFactsModel):
    """``read_host_health.sh``'s last line; when the workflow could not read the instance, its
    Catch passes ``{"ok": false, "reason": ...}`` instead."""

    ok: bool
    error: str | None = None
    message: str = ""
    reason: str | None = None
    machine: MachineFacts | None = None
    co_tenants: list[CoTenantFacts] = []


class HostFinding(BaseModel):
    """One way the instance is worse than before: what, on what, seen, allowed, before."""

    model_config = ConfigDict(frozen=True)

    code: HostFindingCode
    subject: str
    observed: float
    allowed: float
    baseline: float | None = None
    detail: str | None = None


def build_host_health_commands(co_tenants: list[str]) -> list[str]:
    """The ``commands`` of ``AWS-RunShellScript`` that read the instance (read-only)."""
    arguments: list[str] = []
    for unit in co_tenants:
        arguments += ["--co-tenant", valid_service_unit(unit)]
    return script_command(HOST_HEALTH_SCRIPT, arguments)


def parse_host_health(output: str) -> HostHealthReading | None:
    """The last complete ``REDIS_HOST_HEALTH`` line of ``output``, or None."""
    for line in reversed(output.splitlines()):
        position = line.find(HOST_HEALTH_MARKER)
        if position < 0:
            continue
        try:
            return HostHealthReading.model_validate(json.loads(line[position + len(HOST_HEALTH_MARKER) :]))
        except (ValueError, ValidationError):
            continue  # cut in the middle: look for an earlier complete line
    return None


def swap_pages(machine: MachineFacts | None) -> int | None:
    """Pages swapped in and out since boot."""
    if machine is None or machine.swap_in_pages is None or machine.swap_out_pages is None:
        return None
    return machine.swap_in_pages + machine.swap_out_pages


def swap_rate(earlier: MachineFacts | None, later: MachineFacts | None) -> float | None:
    """Pages swapped in and out a second between two readings (None: unknown, or a reboot between)."""
    first, second = swap_pages(earlier), swap_pages(later)
    if first is None or second is None or earlier is None or later is None:
        return None
    if earlier.uptime_seconds is None or later.uptime_seconds is None:
        return None
    elapsed = later.uptime_seconds - earlier.uptime_seconds
    if elapsed <= 0 or second < first:
        return None
    return (second - first) / elapsed


def average_swap_rate(machine: MachineFacts | None) -> float | None:
    """Pages swapped in and out a second on average since boot: the instance's normal."""
    pages = swap_pages(machine)
    if pages is None or machine is None or not machine.uptime_seconds:
        return None
    return pages / machine.uptime_seconds


def load_per_cpu(machine: MachineFacts | None) -> float | None:
    """The 5-minute load average per CPU."""
    if machine is None or machine.load5 is None or not machine.cpus:
        return None
    return machine.load5 / machine.cpus


def memory_pressure(machine: MachineFacts | None) -> float | None:
    if machine is None or machine.memory_pressure is None:
        return None
    return machine.memory_pressure.some_avg60


def host_findings(
    reading: HostHealthReading,
    *,
    before: MachineFacts | None,
    previous: MachineFacts | None,
    marks: dict[str, str],
    thresholds: BakeThresholds,
) -> list[HostFinding]:
    """What is worse on the instance than before the run.

    ``before``: the preflight's reading of the instance; ``previous``: the last reading of this
    bake (None at its first check: the swap rate is then measured since the preflight);
    ``marks``: each co-tenant that was active, with its restart mark (:attr:`CoTenantFacts.mark`)
    to compare with. Pure: no I/O.
    """
    findings: list[HostFinding] = []
    for unit in reading.co_tenants:
        mark = marks.get(unit.unit)
        if mark is None:
            continue  # it was not running before: nothing to lose
        if unit.active_state != "active":
            findings.append(
                HostFinding(
                    code="CoTenantDown",
                    subject=unit.unit,
                    observed=0,
                    allowed=1,
                    detail=f"{unit.active_state or unit.load_state or 'unknown'} (was active)",
                )
            )
        elif unit.mark != mark:
            findings.append(
                HostFinding(
                    code="CoTenantRestarted",
                    subject=unit.unit,
                    observed=1,
                    allowed=0,
                    detail=f"pid/started/restarts {mark} -> {unit.mark}",
                )
            )
    machine = reading.machine
    pressure, pressure_before = memory_pressure(machine), memory_pressure(before)
    if pressure is not None:
        base = pressure_before or 0.0
        allowed = round(base + thresholds.memory_pressure_margin_percent, 2)
        if pressure > allowed:
            findings.append(
                HostFinding(
                    code="MemoryPressure",
                    subject="instance",
                    observed=pressure,
                    allowed=allowed,
                    baseline=base,
                )
            )
    rate = swap_rate(previous or before, machine)
    if rate is not None:
        base = average_swap_rate(before) or 0.0
        allowed = round(base + thresholds.swap_pages_per_second_margin, 2)
        if rate > allowed:
            findings.append(
                HostFinding(
                    code="SwapActivity",
                    subject="instance",
                    observed=round(rate, 2),
                    allowed=allowed,
                    baseline=round(base, 2),
                )
            )
    load, load_before = load_per_cpu(machine), load_per_cpu(before)
    if load is not None and load_before is not None:
        allowed = round(load_before + thresholds.load_per_cpu_margin, 2)
        if load > allowed:
            findings.append(
                HostFinding(
                    code="HostLoad",
                    subject="instance",
                    observed=round(load, 2),
                    allowed=allowed,
                    baseline=round(load_before, 2),
                )
            )
    return findings


__all__ = [
    "HostFinding",
    "HostHealthInput",
    "HostHealthReading",
    "average_swap_rate",
    "build_host_health_commands",
    "host_findings",
    "load_per_cpu",
    "memory_pressure",
    "parse_host_health",
    "swap_rate",
]
