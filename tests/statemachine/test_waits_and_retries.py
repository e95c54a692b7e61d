"""Polling that adapts to the install, and Retry with backoff and jitter, as requested of AWS.

Waits are instant locally, but the engine records every requested second, so what the workflow
would wait on AWS is asserted here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import pytest
from redis_migration.steps import install_redis

from redis_migration_ops.local_engine.sandbox_host import CommandResult, SandboxHost
from redis_migration_ops.rehearsal.migration import LocalSetup


@dataclass
class SlowHost:
    """The real sandbox host, with a slower machine's install: it starts ``delay_s`` late."""

    host: SandboxHost
    delay_s: float

    def run_command(self, commands: list[str], timeout_s: float = 600.0) -> CommandResult:
        time.sleep(self.delay_s)
        return self.host.run_command(commands, timeout_s)


class _ClockBehind(datetime):
    """``datetime`` whose ``now`` is 100 s early: a command sent now looks 100 s old later on."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _ClockBehind:
        moment = datetime.now(tz) - timedelta(seconds=100)
        return cls.fromtimestamp(moment.timestamp(), tz)


def waits_of(setup: LocalSetup, state: str, kind: str) -> list[float]:
    return [w.seconds for w in setup.engine.requested_waits if w.state_name == state and w.kind == kind]


def test_a_fast_install_is_checked_after_one_second_not_a_fixed_long_wait(setup: LocalSetup) -> None:
    started = time.monotonic()
    run = setup.run()
    took = time.monotonic() - started

    assert run.described["status"] == "SUCCEEDED"
    waits = waits_of(setup, "WaitForInstall", "Wait")
    # The first wait is the floor (nothing has elapsed yet); none is longer than an eighth of
    # the whole run, and every wait is followed by one check.
    assert waits[0] == 1.0
    assert all(1.0 <= wait <= max(1.0, took // 8) for wait in waits), waits
    assert run.states_entered.count("CheckInstall") == len(waits)


def test_a_young_install_is_polled_every_second(setup: LocalSetup) -> None:
    # Given an install that starts 3.5 s late (so it is not over after three 1 s waits)
    setup.engine.register_sandbox(setup.account.instance_id, SlowHost(setup.sandbox, 3.5))

    run = setup.run()

    assert run.described["status"] == "SUCCEEDED"
    waits = waits_of(setup, "WaitForInstall", "Wait")
    # An eighth of under 8 s rounds down to the 1 s floor
    assert len(waits) >= 4
    assert set(waits) == {1.0}
    assert run.states_entered.count("CheckInstall") == len(waits)


def test_an_install_running_for_minutes_is_waited_on_for_an_eighth_of_its_age(
    setup: LocalSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a command that, by InstallRedis's clock, was sent 100 s ago: its sentAt (and
    # CheckInstall's own deadline) say the install has run for 100 s already
    monkeypatch.setattr(install_redis, "datetime", _ClockBehind)

    started = time.monotonic()
    run = setup.run()
    took = time.monotonic() - started

    # Then the workflow asks to wait 12 s (100 s / 8), then an eighth of the age reached
    assert run.described["status"] == "SUCCEEDED"
    waits = waits_of(setup, "WaitForInstall", "Wait")
    assert waits[0] == 12.0
    assert all(12.0 <= wait <= (100 + took) // 8 for wait in waits), waits


def test_a_transient_error_is_retried_with_jittered_backoff_and_the_run_goes_on(setup: LocalSetup) -> None:
    # Given the first two attempts of the ingress step fail with our transient error
    setup.engine.fail_at("AllowRedisIngress", 1, error="TransientError")
    setup.engine.fail_at("AllowRedisIngress", 2, error="TransientError")

    run = setup.run()

    assert run.described["status"] == "SUCCEEDED"
    backoff = waits_of(setup, "AllowRedisIngress", "Retry")
    assert len(backoff) == 2
    # FULL jitter: each wait is drawn from [0, interval * rate^attempt] (2 s, then 4 s)
    assert 0 <= backoff[0] <= 2.0
    assert 0 <= backoff[1] <= 4.0


def test_a_permanent_error_is_not_retried(setup: LocalSetup) -> None:
    setup.engine.fail_at("AllowRedisIngress", 1)

    run = setup.run()

    assert run.described["status"] == "FAILED"
    assert waits_of(setup, "AllowRedisIngress", "Retry") == []
    attempts: list[Any] = [
        e for e in run.history if e.get("stateEnteredEventDetails", {}).get("name") == "AllowRedisIngress"
    ]
    assert len(attempts) == 1
