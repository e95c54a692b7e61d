"""How long a consistent migration keeps its writers frozen, estimated before anything changes.

The freeze lasts from the first writer's reserved concurrency 0 until the last one is unfrozen:

1. the invocations already running finish: as long as the longest timeout among the writers, every
   version an alias serves included (reserved concurrency 0 throttles new invocations; those already
   running finish, up to their timeout: see DESIGN.md's data facts and
   https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
2. what changed since the full copy is copied again and every key verified (:data:`KEYS_PER_SECOND`,
   measured on this project's loopback benchmark and halved for a network to ElastiCache);
3. the functions are switched (:data:`SECONDS_PER_CUTOVER_ROUND` per round of ``CutoverConcurrency``)
   and unfrozen, and the state machine's own steps between (:data:`STEP_OVERHEAD_SECONDS`).

A freeze longer than ``maxFreezeSeconds`` is refused before any change, naming the writer with the
longest timeout and the ways on. The estimate is deliberately pessimistic: the runtime bound
(checked with the workflow's clock at every copy and verification slice) still ends a freeze that
overruns it, but a refusal before anything changes is the cheap way out.
"""

from __future__ import annotations

import math

from redis_migration.models import Model

# `benchmarks/data_copy.py`: 1,000,000 keys with 1 % changed took 6.2 s to copy the changes and
# 3.2 s to verify on loopback (about 107,000 keys/s for both); halved for ElastiCache over a network.
KEYS_PER_SECOND = 50_000
# A round of function updates: UpdateFunctionConfiguration, then the function_updated_v2 waiter
# (updates take a few seconds on AWS), then its verification.
SECONDS_PER_CUTOVER_ROUND = 10
# Lambda invocations and state transitions between the steps of the freeze (freeze Map, copy and
# verify slices, cutover Map, verification, unfreeze Map): about a second each on AWS.
STEP_OVERHEAD_SECONDS = 15


class FreezeEstimate(Model):
    """The parts of a freeze, in seconds, and whether they fit ``max_freeze_seconds``."""

    running_invocations: int
    slowest_writer: str | None
    copy_and_verify: int
    cutover: int
    overhead: int
    total: int
    max_freeze_seconds: int

    @property
    def fits(self) -> bool:
        return self.total <= self.max_freeze_seconds

    def refusal(self) -> str:
        """The refusal of a freeze that does not fit: each figure, and the ways on."""
        writer = f"{self.slowest_writer}'s timeout" if self.slowest_writer else "the writers' longest timeout"
        return (
            f"maxFreezeSeconds: the writers would be frozen for about {self.total} s, longer than "
            f"maxFreezeSeconds {self.max_freeze_seconds}: {self.running_invocations} s for the invocations "
            f"already running to end ({writer}), about {self.copy_and_verify} s to copy and verify what "
            f"changed, {self.cutover} s to switch the functions and {self.overhead} s of steps between. "
            f"Ways on: shorten the timeout of {self.slowest_writer or 'the slowest writer'}, raise "
            f'maxFreezeSeconds to at least {self.total}, or choose "dataCopy": "warm" (no freeze)'
        )


def estimate_freeze(
    *,
    longest_timeout: int,
    slowest_writer: str | None,
    source_keys: int,
    functions: int,
    cutover_concurrency: int,
    max_freeze_seconds: int,
) -> FreezeEstimate:
    """The freeze's estimate for these writers and this much data (see the module doc)."""
    copy_and_verify = math.ceil(source_keys / KEYS_PER_SECOND)
    rounds = math.ceil(functions / max(1, cutover_concurrency)) if functions else 0
    cutover = rounds * SECONDS_PER_CUTOVER_ROUND
    total = longest_timeout + copy_and_verify + cutover + STEP_OVERHEAD_SECONDS
    return FreezeEstimate(
        running_invocations=longest_timeout,
        slowest_writer=slowest_writer,
        copy_and_verify=copy_and_verify,
        cutover=cutover,
        overhead=STEP_OVERHEAD_SECONDS,
        total=total,
        max_freeze_seconds=max_freeze_seconds,
    )
