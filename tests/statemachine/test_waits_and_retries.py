"""Polling that adapts to the install, and Retry with backoff and jitter, as requested of AWS.

Waits are instant locally, but the engine records every requested second, so what the workflow
would wait on AWS is asserted here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from redis_migration_ops.local_engine.sandbox_host import CommandResult, SandboxHost
from redis_migration_ops.rehearsal import LocalSetup


@dataclass
class SlowHost:
    """The real sandbox host, with a slower machine's install: it starts ``delay_s`` late."""

    host: SandboxHost
    delay_s: float

    def run_command(self, commands: list[str], timeout_s: float = 600.0) -> CommandResult:
        time.sleep(self.delay_s)
        return self.host.run_command(commands, timeout_s)


def waits_of(setup: LocalSetup, state: str, kind: str) -> list[float]:
    return [w.seconds for w in setup.engine.requested_waits if w.state_name == state and w.kind == kind]


def test_a_fast_install_is_checked_after_two_seconds_not_a_fixed_long_wait(setup: LocalSetup) -> None:
    run = setup.run()

    assert run.described["status"] == "SUCCEEDED"
    assert waits_of(setup, "WaitForInstall", "Wait") == [2.0]
    assert run.states_entered.count("CheckInstall") == 1


def test_a_slow_install_is_polled_with_growing_waits(setup: LocalSetup) -> None:
    # Given an install that takes over 3 s (2 s + 4 s of waits cover it)
    setup.engine.register_sandbox(setup.account.instance_id, SlowHost(setup.sandbox, 3.5))

    run = setup.run()

    assert run.described["status"] == "SUCCEEDED"
    assert waits_of(setup, "WaitForInstall", "Wait") == [2.0, 4.0]
    assert run.states_entered.count("CheckInstall") == 2


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
