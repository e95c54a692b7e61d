"""A rehearsal that crashes leaves nothing running: not its sandbox host, not its ElastiCache stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from redis_migration_ops.rehearsal.migration import local_setup


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_rehearsal_that_crashes_stops_its_sandbox_and_its_elasticache_even_with_keep_running(
    tmp_path: Path,
) -> None:
    # Given a rehearsal asked to keep its Redis running afterwards
    started: dict[str, int] = {}

    def crash_half_way() -> None:
        with local_setup(tmp_path / "r", 1, keep_running=True) as setup:
            assert setup.elasticache is not None
            assert setup.elasticache.pid is not None
            started.update(sandbox=setup.sandbox.init_pid, elasticache=setup.elasticache.pid)
            raise RuntimeError("crashed half-way")

    # When it crashes half-way (an exception)
    with pytest.raises(RuntimeError, match="half-way"):
        crash_half_way()
    # Then neither the sandbox host nor the ElastiCache stand-in is left running
    assert started
    assert {name: alive(pid) for name, pid in started.items()} == {"sandbox": False, "elasticache": False}
