"""The data steps' shared part: an invocation's time budget."""

from __future__ import annotations

from collections.abc import Callable

# Kept back from the function's remaining time: closing connections and returning the output.
SAFETY_SECONDS = 15.0
MIN_BUDGET_SECONDS = 1.0


def time_budget(requested_s: float, remaining_ms: Callable[[], int] | None) -> float:
    """Seconds this invocation may work: the requested budget, within the function's remaining
    time less a safety margin (``remaining_ms``: the Lambda context's get_remaining_time_in_millis)."""
    if remaining_ms is None:
        return requested_s
    return max(MIN_BUDGET_SECONDS, min(requested_s, remaining_ms() / 1000 - SAFETY_SECONDS))
