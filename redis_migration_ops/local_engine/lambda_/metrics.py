"""Lambda's invocation metrics: ``AWS/Lambda`` Invocations, Errors and Throttles per function.

AWS ("Types of metrics for Lambda functions",
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html): Lambda sends
``Invocations``, ``Errors`` and ``Throttles`` for each function to CloudWatch every minute,
dimension ``FunctionName``, to be read with the ``Sum`` statistic; it sends a metric only when it
is not zero. moto publishes no Lambda metric at all, so a bake would always read silence.

Gap filled with a model of the functions' traffic, since the rehearsal's client functions are
never really invoked: a :class:`LambdaTraffic` gives a function's invocations, errors and
throttles per minute while it points to the Redis it used when the traffic was added (``before``)
and once its ``REDIS_HOST`` is something else (``after``: a function whose code cannot use the new
Redis errors from then on). The engine writes the datapoints into moto's CloudWatch the way
Lambda would:

- ``history_minutes`` of ``before`` traffic, one datapoint a minute, before the moment the traffic
  is added (the time before the rehearsal: a baseline to compare with);
- for every Wait state the workflow asks for, the traffic of that many seconds, written when the
  engine skips the Wait (Waits take no time here, see ``instant_waits``), spread over the waited
  stretch minute by minute (each part stamped with the start of the minute it falls in, as
  CloudWatch buckets a one-minute metric), each function at the rates of the Redis it points to then;
- a function whose reserved concurrency is 0 (frozen) runs nothing: every invocation attempt is a
  throttle, none is an invocation or an error. AWS: "Throttles - The number of invocation requests
  that are throttled. When all function instances are processing requests and no concurrency is
  available to scale up, Lambda rejects additional requests"; "Invocations ... aren't recorded if
  the invocation request is throttled" (same page), and reserved concurrency 0 "stops any events
  from being processed until you remove the limit"
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
- :meth:`LambdaMetrics.record` writes given counts at a given time (tests, seeding).

The engine runs Lambda as moto's ``awslambda_simple`` backend (no Docker), where the functions are read.
Datapoints go straight into the backend (Lambda publishes them, not a PutMetricData caller, which
AWS would refuse in an ``AWS/`` namespace).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from moto.awslambda_simple.models import lambda_simple_backends
from moto.cloudwatch.models import MetricDatum, cloudwatch_backends

from redis_migration_ops.local_engine.moto_patch import MotoPatch
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord, WaitRecorder

NAMESPACE = "AWS/Lambda"


@dataclass(frozen=True)
class TrafficRates:
    """Per minute."""

    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0


@dataclass(frozen=True)
class LambdaTraffic:
    function_name: str
    before: TrafficRates
    # None: the same as before whatever Redis the function uses.
    after: TrafficRates | None = None


def frozen(rates: TrafficRates) -> TrafficRates:
    """What a function at reserved concurrency 0 reports: every attempt throttled, nothing run."""
    return TrafficRates(invocations=0.0, errors=0.0, throttles=rates.invocations + rates.throttles)


def floor_minute(moment: datetime) -> datetime:
    """The start of the minute ``moment`` falls in."""
    return moment.replace(second=0, microsecond=0)


def moto_timestamp(moment: datetime) -> datetime:
    """moto keeps metric timestamps as naive UTC datetimes (and compares them with naive ones)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


class LambdaMetrics(MotoPatch):
    """Gap: moto publishes no ``AWS/Lambda`` metric. Fill: the traffic model of the module doc."""

    def __init__(self, waits: WaitRecorder, account_id: str, region: str) -> None:
        super().__init__()
        self._waits = waits
        self._account_id = account_id
        self._region = region
        self._traffic: dict[str, tuple[LambdaTraffic, str | None]] = {}
        self._lock = threading.Lock()
        self._listening = False

    # -- what the engine does -----------------------------------------------------------------

    @property
    def installed(self) -> bool:
        return self._listening

    def install(self) -> None:
        self._waits.listen(self._on_wait)
        self._listening = True

    def uninstall(self) -> None:
        self._waits.stop_listening(self._on_wait)
        self._listening = False
        with self._lock:
            self._traffic.clear()

    def _on_wait(self, record: WaitRecord) -> None:
        if record.kind == "Wait" and record.seconds > 0:
            self.advance(record.seconds)

    # -- the model ------------------------------------------------------------------------------

    def add_traffic(
        self, traffic: LambdaTraffic, *, history_minutes: int = 0, now: datetime | None = None
    ) -> None:
        """Follow ``traffic`` from now on; write ``history_minutes`` of its ``before`` rates first."""
        host = self.redis_host(traffic.function_name)
        with self._lock:
            self._traffic[traffic.function_name] = (traffic, host)
        now = now or datetime.now(UTC)
        for minute in range(history_minutes, 0, -1):
            self._write(traffic.function_name, traffic.before, now - timedelta(minutes=minute), 1.0)

    def advance(self, seconds: float, *, now: datetime | None = None) -> None:
        """``seconds`` of traffic ending ``now`` for every followed function, at the rates of the Redis
        it uses now: one datapoint a minute, as Lambda publishes them (the workflow's clock has moved
        by the wait, see ``stepfunctions/workflow_clock.py``)."""
        now = now or datetime.now(UTC)
        with self._lock:
            followed = list(self._traffic.values())
        for traffic, host_then in followed:
            switched = self.redis_host(traffic.function_name) != host_then
            rates = traffic.after if switched and traffic.after is not None else traffic.before
            if self.reserved_concurrency(traffic.function_name) == 0:
                rates = frozen(rates)
            # Split at minute boundaries: each part is stamped with the start of its own minute, as
            # CloudWatch buckets one-minute data (a part of a minute never leaks into the next one).
            at, end = now - timedelta(seconds=seconds), now
            while at < end:
                minute = floor_minute(at)
                upto = min(end, minute + timedelta(minutes=1))
                self._write(traffic.function_name, rates, minute, (upto - at).total_seconds() / 60.0)
                at = upto

    def record(
        self,
        function_name: str,
        at: datetime,
        *,
        invocations: float = 0,
        errors: float = 0,
        throttles: float = 0,
    ) -> None:
        """Write these counts for ``function_name`` at ``at``, as Lambda would publish them."""
        self._write(function_name, TrafficRates(invocations, errors, throttles), at, 1.0)

    def redis_host(self, function_name: str) -> str | None:
        """The function's REDIS_HOST in ``$LATEST``, read from moto's backend (not through the API: no
        caller's IAM applies to what the engine itself reads)."""
        try:
            function = lambda_simple_backends[self._account_id][self._region].get_function(function_name)
        except Exception:  # deleted or never created: no host
            return None
        return (function.environment_vars or {}).get("REDIS_HOST")

    def reserved_concurrency(self, function_name: str) -> int | None:
        """The function's reserved concurrency (None: none), read from moto's backend."""
        try:
            function = lambda_simple_backends[self._account_id][self._region].get_function(function_name)
        except Exception:  # deleted or never created
            return None
        value = function.reserved_concurrency
        return None if value is None else int(value)

    def _write(self, function_name: str, rates: TrafficRates, at: datetime, minutes: float) -> None:
        backend = cloudwatch_backends[self._account_id][self._region]
        dimensions = [{"Name": "FunctionName", "Value": function_name}]
        at = moto_timestamp(at)
        for name, per_minute in (
            ("Invocations", rates.invocations),
            ("Errors", rates.errors),
            ("Throttles", rates.throttles),
        ):
            value = round(per_minute * minutes, 6)
            if value > 0:  # Lambda sends a metric only when it is not zero
                backend.metric_data.append(MetricDatum(NAMESPACE, name, value, dimensions, at, "Count"))
