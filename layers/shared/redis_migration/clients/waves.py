"""Canary waves: the plan's batches split into the cutover waves of ``cutoverWaves``.

The cutover Map iterates over the plan's batch files (records.py: one function per batch up to
100 functions, then up to 20 per batch). A wave is a range of those batches: the workflow switches
one wave, verifies and bakes it, then goes on to the next, so a regression found in the first
wave (one function, say) rolls back that one function instead of all of them.

Each target of ``cutoverWaves`` is cumulative: ``[1, "10%", "100%"]`` means one function, then
up to a tenth of them, then every function. A target is rounded up to whole batches (a batch is
switched by one Map iteration; with more than 100 functions a batch holds up to 20, so "1" is
then the first batch); a wave that adds no batch to the one before (``[1, "1%", ...]`` on a small
plan) is merged into it and said so. A target that names fewer functions than an earlier one once
the function count is known (``[50, "1%", "100%"]`` with 1,000 functions) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis_migration.errors import InvalidInput
from redis_migration.models import CutoverWave, PlanBatch


def target_functions(target: int | str, total: int) -> int:
    """How many functions (cumulative) ``target`` names out of ``total``: a count, or a share
    rounded up (``"10%"`` of 15 is 2: a canary is never empty)."""
    if isinstance(target, int):
        return min(target, total)
    return min(total, math.ceil(total * float(target.rstrip("%")) / 100))


def plan_waves(
    targets: Sequence[int | str] | None, batches: Sequence[PlanBatch]
) -> tuple[list[CutoverWave], list[str]]:
    """The waves over ``batches`` (in index order) and notes on merged waves.

    ``targets`` None or empty: one wave of every batch. Raises InvalidInput naming the element of
    ``cutoverWaves`` that names fewer functions than the wave before it.
    """
    ordered = sorted(batches, key=lambda batch: batch.index)
    if [batch.index for batch in ordered] != list(range(len(ordered))):
        raise ValueError("the plan's batches are not numbered 0..n-1")
    total = sum(batch.count for batch in ordered)
    if not targets:
        targets = ["100%"]
    ends: list[int] = []  # cumulative function count at the end of each batch
    for batch in ordered:
        ends.append((ends[-1] if ends else 0) + batch.count)
    waves: list[CutoverWave] = []
    notes: list[str] = []
    previous_functions = 0
    start = 0
    for position, target in enumerate(targets):
        wanted = target_functions(target, total)
        if wanted < previous_functions:
            raise InvalidInput(
                f"cutoverWaves[{position}]: {target!r} is {wanted} of {total} functions, fewer than "
                f"the {previous_functions} of the wave before it"
            )
        previous_functions = max(previous_functions, wanted)
        # The first batch that reaches the target ends the wave (whole batches only).
        end = next((index + 1 for index, through in enumerate(ends) if through >= wanted), len(ordered))
        if end <= start:
            if waves:
                notes.append(
                    f"cutoverWaves[{position}] ({target}) adds no batch to wave {len(waves)} at "
                    f"{total} functions; merged into it"
                )
            continue
        through = ends[end - 1]
        waves.append(
            CutoverWave(
                index=len(waves),
                target=target,
                start_batch=start,
                end_batch=end,
                functions=through - (ends[start - 1] if start else 0),
                functions_through=through,
                last=False,
            )
        )
        start = end
    if waves:
        waves[-1] = waves[-1].model_copy(update={"last": True})
    return waves, notes


__all__ = ["plan_waves", "target_functions"]
