"""How long ElastiCache's slow operations take in the rehearsal, on the workflow's own clock.

A snapshot, an export to S3 and a replication group's deletion take minutes on AWS (the deletion
"minutes to tens of minutes"; boto3's ``replication_group_deleted`` waiter polls 15 s x 40). moto
finishes them at once, or never (a deleted group stays ``deleting`` forever). The local engine's
Wait states and Retry backoffs return at once but record the seconds they asked for
(``instant_waits``); this module turns those records into a clock: an operation that takes 480 s
finishes once the workflow has waited 480 s since it started, so the poll loops run as often as
they would on AWS, and a rehearsal shows it.

:class:`ElastiCacheTimings` holds the durations (``LocalEngine(elasticache_timings=...)``);
:class:`ElastiCacheOperations` the operations in flight, shared by the modules that model them
(``elasticache_deletion``, ``elasticache_snapshots``, ``ec2_security_group_dependencies``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecorder


@dataclass(frozen=True)
class ElastiCacheTimings:
    """Durations in seconds of the workflow's clock (what AWS takes, roughly, for a small group)."""

    snapshot_seconds: float = 120.0
    export_seconds: float = 90.0
    deletion_seconds: float = 480.0
    # After the deletion, the nodes' network interfaces are released a little later: until then
    # their security groups answer DependencyViolation.
    interface_release_seconds: float = 60.0


class VirtualClock:
    """Real time plus every wait the workflow asked for (none of which was slept)."""

    def __init__(self, recorder: WaitRecorder) -> None:
        self._recorder = recorder
        self._advanced = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            advanced = self._advanced
        return time.monotonic() + advanced + sum(record.seconds for record in self._recorder.snapshot())

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass without a Wait state (a test, or an operator's pause in a rehearsal)."""
        with self._lock:
            self._advanced += seconds


@dataclass
class Pending:
    """One operation in flight: it completes once the clock passes ``due``."""

    due: float
    complete: Callable[[], None]


@dataclass
class ElastiCacheOperations:
    """The operations in flight and what they leave behind, completed lazily when anything looks."""

    clock: VirtualClock
    timings: ElastiCacheTimings = field(default_factory=ElastiCacheTimings)
    lock: threading.RLock = field(default_factory=threading.RLock)
    pending: dict[str, Pending] = field(default_factory=dict)
    # Security group id -> clock time until which a deleted node's interface still holds it.
    held_until: dict[str, float] = field(default_factory=dict)

    def start(self, key: str, seconds: float, complete: Callable[[], None]) -> None:
        """Complete ``key`` after ``seconds`` of the workflow's clock (replacing one in flight)."""
        with self.lock:
            self.pending[key] = Pending(self.clock.now() + seconds, complete)

    def in_flight(self, key: str) -> bool:
        with self.lock:
            self.tick()
            return key in self.pending

    def tick(self) -> None:
        """Complete every operation that is due."""
        with self.lock:
            now = self.clock.now()
            for key, operation in sorted(self.pending.items(), key=lambda item: item[1].due):
                if operation.due <= now:
                    del self.pending[key]
                    operation.complete()

    def hold_security_groups(self, group_ids: list[str]) -> None:
        with self.lock:
            until = self.clock.now() + self.timings.interface_release_seconds
            for group_id in group_ids:
                self.held_until[group_id] = max(until, self.held_until.get(group_id, 0.0))

    def held(self, group_id: str) -> bool:
        with self.lock:
            return self.held_until.get(group_id, 0.0) > self.clock.now()
