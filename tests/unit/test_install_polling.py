"""WaitForInstall's wait, read from the real ASL and evaluated by the local engine's JSONata.

The wait is an eighth of the time since the install command was sent (at least 1 s, at most
InstallPollMaxSeconds), so the check that sees an install finished comes at most about an eighth
of its duration after it. ``$now()`` is pinned to a chosen instant here, so each wait is exact;
the state-machine tests run the same expression in the engine on the real clock.
"""

from __future__ import annotations

import bisect
import json
from datetime import datetime, timedelta

import jsonata
import pytest

from redis_migration_ops.local_engine.template import load_template
from tests.conftest import ASL_PATH, TEMPLATE_PATH

# As InstallRedis writes it (datetime.isoformat: microseconds and a +00:00 offset).
SENT_AT = "2026-01-01T00:00:00.654321+00:00"
# When the first Wait starts: InstallRedis returns right after SendCommand.
FIRST_WAIT_AT_S = 0.2
# A check's own time on AWS (the CheckInstall invocation and the transitions around it).
CHECK_LATENCIES_S = (0.0, 0.5, 1.0)


def template_parameter(name: str) -> int:
    return int(load_template(TEMPLATE_PATH)["Parameters"][name]["Default"])


class WaitForInstall:
    """The Seconds expression of the real WaitForInstall state, with the stack's defaults."""

    def __init__(self) -> None:
        state = json.loads(ASL_PATH.read_text())["States"]["WaitForInstall"]
        source = str(state["Seconds"]).removeprefix("{%").removesuffix("%}").strip()
        self.longest_s = template_parameter("InstallPollMaxSeconds")
        source = source.replace("${InstallPollMaxSeconds}", str(self.longest_s))
        assert "${" not in source, source
        self._expression = jsonata.Jsonata(source)
        self._now = ""
        self._expression.register_lambda("now", lambda: self._now)
        self._sent = datetime.fromisoformat(SENT_AT)

    def seconds(self, elapsed_s: float) -> int:
        """The wait requested when the state is entered ``elapsed_s`` after the command was sent."""
        now = self._sent + timedelta(seconds=elapsed_s)
        self._now = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        value = self._expression.evaluate(None, {"installCommand": {"sentAt": SENT_AT}})
        assert float(value).is_integer(), value
        return int(value)

    def checks(self, check_latency_s: float, until_s: float) -> list[float]:
        """When each check runs (seconds after sending), up to the first at or after ``until_s``.

        The waits depend only on the time elapsed, not on the install, so one schedule answers
        for installs of every length: the check that sees an install finished is the first one
        at or after its end.
        """
        elapsed = FIRST_WAIT_AT_S
        times: list[float] = []
        while elapsed < until_s and len(times) < 1000:
            elapsed += self.seconds(elapsed) + check_latency_s
            times.append(elapsed)
        assert elapsed >= until_s, f"no end after {len(times)} checks"
        return times


def seen_finished(checks: list[float], install_s: float) -> tuple[int, float]:
    """(checks made, seconds from sending) at the first check after an ``install_s`` install."""
    index = bisect.bisect_left(checks, install_s)
    return index + 1, checks[index]


@pytest.fixture(scope="module")
def wait() -> WaitForInstall:
    return WaitForInstall()


@pytest.mark.parametrize(
    ("elapsed_s", "expected_s"),
    [
        (FIRST_WAIT_AT_S, 1),  # the first check comes after one second
        (-30.0, 1),  # a Lambda clock ahead of Step Functions' still waits the floor
        (7.0, 1),
        (15.5, 2),
        (100.0, 12),
        (600.0, 75),
        (2000.0, 120),  # at most InstallPollMaxSeconds
    ],
)
def test_the_wait_is_an_eighth_of_the_time_since_the_command_was_sent(
    wait: WaitForInstall, elapsed_s: float, expected_s: int
) -> None:
    # sentAt's fraction of a second (.654) is dropped before parsing: 7.0 s reads as 7.654 s
    assert wait.seconds(elapsed_s) == expected_s


def test_installs_of_10_to_600_seconds_are_seen_finished_within_a_fifth_of_their_time(
    wait: WaitForInstall,
) -> None:
    for latency in CHECK_LATENCIES_S:
        # Given the checks the workflow makes, each taking `latency` seconds
        checks = wait.checks(latency, until_s=600)

        # When installs of every length from 10 s to 600 s (tenths of a second) finish
        overshoots = [(seen_finished(checks, t / 10)[1] - t / 10) / (t / 10) for t in range(100, 6001)]

        # Then the check that sees each one finished comes at most 20% of its time after it
        assert max(overshoots) <= 0.20, f"overshoot {max(overshoots):.1%} with {latency} s per check"


def test_polls_stay_few_and_outlast_the_install_timeout(wait: WaitForInstall) -> None:
    # Given the stack's defaults: CheckInstall's own deadline for the command, the cap on checks
    deadline_s = template_parameter("InstallTimeoutSeconds") + 60
    max_polls = template_parameter("InstallMaxPolls")

    # Then a 10-minute install takes at most 50 checks (150 transitions, under $0.004), and the
    # checks allowed last until CheckInstall's deadline even when checks take no time at all
    assert seen_finished(wait.checks(0.5, until_s=600), 600)[0] <= 50
    assert len(wait.checks(0.0, until_s=deadline_s)) <= max_polls
