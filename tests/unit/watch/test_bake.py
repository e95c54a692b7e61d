"""The bake's domain: RecordBaseline and CheckBake against CloudWatch in the local engine.

The metrics are written the way Lambda and ElastiCache publish them (the engine's
``lambda_metrics`` and ``elasticache_metrics``), at chosen times; the checks run with a chosen
``now``, a minute apart, as the ASL's loop would call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis_migration.aws import AwsClients
from redis_migration.errors import BakeRecordMismatch, RecordUnreadable
from redis_migration.models import (
    BakeThresholds,
    FunctionPlan,
    InstanceFacts,
    MigrationRequest,
    PlanDocument,
    RecordLocation,
)
from redis_migration.records import get_record, plan_key, put_record, write_batches
from redis_migration.watch.bake import (
    SETTLE_SECONDS,
    BakeBaseline,
    BakeCheck,
    BakeCheckInput,
    BaselineInput,
    SelfHostedReading,
    check_bake,
    find_elasticache_nodes,
    record_baseline,
)

from redis_migration_ops.local_engine import LocalEngine

FIXTURES = Path(__file__).parents[1] / "local_engine" / "fixtures"
ENDPOINT = "campaign-redis.abc123.0001.use1.cache.amazonaws.com"
T0 = datetime(2026, 11, 26, 9, 30, 20, tzinfo=UTC)  # RecordBaseline, just before the cutover
MINUTES = 10


def request(**changes: Any) -> MigrationRequest:
    values: dict[str, Any] = {
        "project_name": "campaign-system",
        "environment": "dev",
        "instance_id": "i-0123456789abcdef0",
        "elasticache_endpoint": ENDPOINT,
        "functions": None,
        "remove_keys": [],
        "redis_port": 6379,
        "release": None,
        "dry_run": False,
        "require_approval": False,
        "maxmemory": "512mb",
        "maxmemory_policy": "allkeys-lru",
        "bind_all_interfaces": False,
        "bake_minutes": MINUTES,
    }
    return MigrationRequest(**{**values, **changes})


@dataclass
class World:
    engine: LocalEngine
    aws: AwsClients
    record: RecordLocation
    plan_sha256: str
    functions: list[str]
    node_connections: list[int | None]

    def errors(self, function: str, at: datetime, count: float) -> None:
        self.engine.lambda_metrics.record(function, at, errors=count, invocations=count * 10)

    def throttles(self, function: str, at: datetime, count: float) -> None:
        self.engine.lambda_metrics.record(function, at, throttles=count)

    def baseline(self, **thresholds: Any) -> BakeBaseline:
        return record_baseline(
            BaselineInput(
                record=self.record,
                plan_sha256=self.plan_sha256,
                bake_minutes=MINUTES,
                thresholds=BakeThresholds(**thresholds),
                elasticache_endpoint=ENDPOINT,
            ),
            self.aws,
            now=T0,
        )

    def check(
        self,
        baseline: BakeBaseline,
        progress: BakeCheck | None,
        now: datetime,
        **given: Any,
    ) -> BakeCheck:
        # ElastiCache's sample is taken at the check's time, as a node publishes every minute
        self.engine.elasticache_metrics.clock = lambda: now
        return check_bake(
            BakeCheckInput(record=self.record, baseline=baseline, progress=progress, **given),
            self.aws,
            now=now,
        )

    def bake(self, baseline: BakeBaseline, start: datetime, **given: Any) -> list[BakeCheck]:
        """Every check of one bake, each ``nextCheckSeconds`` after the one before (the ASL's Wait)."""
        checks = [self.check(baseline, None, start, **given)]
        now = start
        for _ in range(MINUTES + 10):
            if checks[-1].done:
                break
            now += timedelta(seconds=checks[-1].next_check_seconds)
            checks.append(self.check(baseline, checks[-1], now, **given))
        return checks


@pytest.fixture
def world() -> Iterator[World]:
    with LocalEngine(FIXTURES) as engine:
        aws = AwsClients(factory=engine.client)
        engine.client("s3").create_bucket(Bucket="records")
        engine.client("elasticache").create_replication_group(
            ReplicationGroupId="campaign-redis",
            ReplicationGroupDescription="campaign system cache",
            Engine="redis",
            CacheNodeType="cache.t4g.small",
            NumCacheClusters=1,
        )
        connections: list[int | None] = [12]
        engine.elasticache_metrics.clock = lambda: T0
        engine.elasticache_metrics.watch_node(
            "campaign-redis-001",
            "0001",
            lambda: connections[0],
            history_minutes=20,
            now=T0 - timedelta(minutes=1),
        )
        record = RecordLocation(bucket="records", prefix="machine/run-1/")
        functions = ["dialer", "reporter", "worker"]
        plans = [FunctionPlan(function_name=name, before={"REDIS_HOST": ENDPOINT}) for name in functions]
        batches = write_batches(record, plans, aws)
        document = PlanDocument(
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:machine:run-1",
            kind="migration",
            request=request(),
            instance=InstanceFacts(
                instance_id="i-0123456789abcdef0",
                private_ip="10.0.1.50",
                vpc_id="vpc-1",
                vpc_cidr="10.0.0.0/16",
                security_group_id="sg-1",
                platform="Linux/UNIX",
            ),
            target={"REDIS_HOST": "10.0.1.50"},
            functions=plans,
            batches=batches,
        )
        digest = put_record(record, plan_key(record), document.to_json_dict(), aws)
        yield World(engine, aws, record, digest, functions, connections)


def test_the_baseline_sums_each_functions_window_before_the_cutover(world: World) -> None:
    # Given errors and throttles inside the 10 minutes before T0, and some outside it
    world.errors("dialer", T0 - timedelta(minutes=3), 3)
    world.errors("dialer", T0 - timedelta(minutes=9, seconds=30), 1)
    world.errors("dialer", T0 - timedelta(minutes=12), 50)  # before the window
    world.throttles("worker", T0 - timedelta(minutes=1), 2)
    world.errors("reporter", T0 + timedelta(seconds=5), 9)  # after it

    # When the baseline is recorded at T0
    baseline = world.baseline()

    # Then the window is the 10 whole minutes before T0 and each function has its own numbers
    assert baseline.window_end == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert baseline.window_start == datetime(2026, 11, 26, 9, 20, tzinfo=UTC)
    assert (baseline.function_count, baseline.errors, baseline.throttles) == (3, 4, 2)
    assert baseline.functions_with_errors == 1
    # ... ElastiCache's node was found behind the endpoint by the group id in its name
    assert baseline.replication_group_id == "campaign-redis"
    assert baseline.node_count == 1
    assert baseline.elasticache_connections == 12
    assert any("by the id in its name" in note for note in baseline.notes)
    # ... and the record in S3 is pinned by the digest the execution carries
    document = get_record(world.record, baseline.key, baseline.sha256, world.aws)
    assert {item["functionName"]: (item["errors"], item["throttles"]) for item in document["functions"]} == {
        "dialer": (4, 0),
        "reporter": (0, 0),
        "worker": (0, 2),
    }


def test_a_quiet_bake_passes_after_the_window_and_the_settling_time(world: World) -> None:
    # Given a baseline with 4 errors on dialer, and a bake whose errors stay within each allowance
    world.errors("dialer", T0 - timedelta(minutes=3), 4)
    baseline = world.baseline()
    start = T0 + timedelta(minutes=2)
    world.errors("dialer", start + timedelta(minutes=4), 13)  # allowed: 4 * 2 + 5
    world.errors("reporter", start + timedelta(minutes=5), 5)  # allowed: 0 * 2 + 5
    world.node_connections[0] = 2  # every client left ElastiCache

    # When the workflow checks once a minute
    checks = world.bake(baseline, start)

    # Then it bakes for the window plus the settling time, then passes
    assert [check.status for check in checks] == ["baking"] * (len(checks) - 1) + ["passed"]
    assert checks[-1].waited_seconds == MINUTES * 60 + SETTLE_SECONDS
    assert len(checks) == MINUTES + SETTLE_SECONDS // 60 + 1
    assert [check.next_check_seconds for check in checks] == [60] * (len(checks) - 1) + [0]
    final = checks[-1]
    assert (final.errors, final.baseline_errors, final.functions_watched) == (18, 4, 3)
    assert final.window_start == datetime(2026, 11, 26, 9, 32, tzinfo=UTC)
    assert final.window_end == datetime(2026, 11, 26, 9, 42, tzinfo=UTC)
    assert not final.elasticache.judged  # reported only: CLIENT LIST judges after the bake
    assert final.elasticache.connections == 2
    assert final.regressions == []
    assert final.summary.startswith("bake passed after 12 min (13 checks): 3 functions, 18 errors")
    # ... and the verdict is recorded with every function's numbers
    assert final.result_key == "machine/run-1/bake/check-0003.json"
    assert final.result_sha256 is not None
    recorded = get_record(world.record, final.result_key, final.result_sha256, world.aws)
    assert {item["functionName"]: item["errors"] for item in recorded["functions"]} == {
        "dialer": 13,
        "reporter": 5,
        "worker": 0,
    }


def test_a_function_over_its_allowance_regresses_at_once_named_with_its_numbers(world: World) -> None:
    # Given reporter had no error before the cutover
    world.errors("dialer", T0 - timedelta(minutes=3), 4)
    baseline = world.baseline()
    start = T0 + timedelta(minutes=1)
    first = world.check(baseline, None, start)
    assert first.status == "baking"

    # When it fails 6 times in the bake's second minute, and worker is throttled
    world.errors("reporter", start + timedelta(seconds=70), 6)
    world.throttles("worker", start + timedelta(seconds=80), 40)
    second = world.check(baseline, first, start + timedelta(seconds=first.next_check_seconds))

    # Then the bake regresses at once (counts only grow: the whole window would say the same)
    assert second.status == "regressed"
    assert second.done
    assert second.regressed
    assert [(r.code, r.subject, r.observed, r.allowed, r.baseline) for r in second.regressions] == [
        ("FunctionErrors", "reporter", 6, 5, 0),
        ("FunctionThrottles", "worker", 40, 5, 0),
    ]
    assert second.regression_count == 2
    assert "FunctionErrors reporter: 6 > 5 allowed (0 before)" in second.summary
    # ... ElastiCache is not judged before the end
    assert not second.elasticache.judged
    assert second.result_key is not None


def test_after_a_freeze_the_window_starts_at_the_first_whole_minute_after_the_unfreeze(world: World) -> None:
    # Given writers frozen from 9:31:30 to 9:32:25: calls to them were throttled meanwhile, the
    # last ones in the unfreeze's own minute
    baseline = world.baseline()
    frozen_at = datetime(2026, 11, 26, 9, 31, 30, tzinfo=UTC)
    unfrozen_at = datetime(2026, 11, 26, 9, 32, 25, tzinfo=UTC)
    world.throttles("worker", frozen_at + timedelta(seconds=10), 40)
    world.throttles("dialer", unfrozen_at - timedelta(seconds=3), 12)
    start = unfrozen_at + timedelta(seconds=2)
    freeze = {"frozen_at": frozen_at, "unfrozen_at": unfrozen_at}
    world.node_connections[0] = 2  # every client left ElastiCache

    # When the bake checks from just after the unfreeze
    checks = world.bake(baseline, start, **freeze)

    # Then its window starts at 9:33 and the freeze's throttles are not judged but reported apart
    final = checks[-1]
    assert final.status == "passed", final.summary
    assert final.window_start == datetime(2026, 11, 26, 9, 33, tzinfo=UTC)
    assert final.window_end == datetime(2026, 11, 26, 9, 43, tzinfo=UTC)
    assert final.throttles == 0
    assert final.freeze_throttles == 52
    assert "the write freeze's own throttles, not judged: 52" in final.summary
    # ... the bake lasted to the window's end plus the settling time
    assert final.waited_seconds == 33 + MINUTES * 60 + SETTLE_SECONDS
    assert all(check.freeze_throttles is None for check in checks[:-1])
    assert final.result_key is not None
    assert final.result_sha256 is not None
    recorded = get_record(world.record, final.result_key, final.result_sha256, world.aws)
    assert {item["functionName"]: item["freezeThrottles"] for item in recorded["functions"]} == {
        "dialer": 12,
        "reporter": 0,
        "worker": 40,
    }
    # ... where a window from the first check's minute would have blamed dialer for the freeze
    unaware = world.check(baseline, None, start)
    assert [(r.code, r.subject) for r in unaware.regressions] == [("FunctionThrottles", "dialer")]


def test_thresholds_decide_what_counts_as_a_regression(world: World) -> None:
    # Given a baseline with 10 errors on dialer, thresholds of +50 % and no margin
    world.errors("dialer", T0 - timedelta(minutes=2), 10)
    baseline = world.baseline(error_increase_percent=50, error_margin=0)
    start = T0 + timedelta(minutes=1)

    # When dialer has 15 errors: allowed; then 16: not
    first = world.check(baseline, None, start)
    world.errors("dialer", start + timedelta(seconds=30), 15)
    second = world.check(baseline, first, start + timedelta(minutes=1))
    assert second.status == "baking"
    world.errors("dialer", start + timedelta(seconds=90), 1)
    regressed = world.check(baseline, second, start + timedelta(minutes=2))

    # Then
    assert [(r.observed, r.allowed) for r in regressed.regressions] == [(16, 15)]


def test_elasticaches_connection_count_is_reported_never_judged(world: World) -> None:
    baseline = world.baseline()
    start = T0 + timedelta(minutes=1)
    # Given ElastiCache's nodes with 7 connections: its own monitoring ("4 to 6" a node, AWS says)
    # and idle sockets of old execution environments, which it never closes
    world.node_connections[0] = 7

    # When a wave that is not the last one bakes, and then the final wave
    early = world.bake(baseline, start, batches_switched=1, final_wave=False)
    final = world.bake(baseline, start + timedelta(minutes=15))

    # Then both pass: the count is reported, and CLIENT LIST judges who still uses ElastiCache
    # after the bake (CheckElastiCacheClientsAfter), not CurrConnections
    assert early[-1].status == final[-1].status == "passed"
    assert final[-1].elasticache.connections == 7
    assert final[-1].elasticache.baseline == 12
    assert not final[-1].elasticache.judged
    assert final[-1].regressions == []


def test_the_self_hosted_redis_regresses_when_it_does_not_answer_twice_in_a_row(world: World) -> None:
    baseline = world.baseline()
    start = T0 + timedelta(minutes=1)
    healthy = SelfHostedReading(healthy=True, metrics={"ConnectedClients": 3})
    down = SelfHostedReading.model_validate(
        {
            "healthy": False,
            "reason": "ConnectionError: refused",
            "metrics": {"Health": 0},
            "instance_id": "i-1",
        }
    )

    first = world.check(baseline, None, start, self_hosted=healthy)
    second = world.check(baseline, first, start + timedelta(minutes=1), self_hosted=down)
    third = world.check(baseline, second, start + timedelta(minutes=2), self_hosted=healthy)
    fourth = world.check(baseline, third, start + timedelta(minutes=3), self_hosted=down)
    fifth = world.check(baseline, fourth, start + timedelta(minutes=4), self_hosted=down)

    # Then one missed reading is a blip, two in a row a regression
    assert [c.status for c in (first, second, third, fourth, fifth)] == ["baking"] * 4 + ["regressed"]
    assert fifth.regressions[0].code == "SelfHostedRedisUnhealthy"
    assert fifth.self_hosted.unhealthy_streak == 2
    assert fifth.self_hosted.reason == "ConnectionError: refused"
    assert (third.self_hosted.min_clients, third.self_hosted.max_clients) == (3, 3)


def test_a_wave_watches_only_the_batches_switched_so_far(world: World) -> None:
    baseline = world.baseline()
    start = T0 + timedelta(minutes=1)
    first = world.check(baseline, None, start, batches_switched=2, final_wave=False)
    world.errors("worker", start + timedelta(seconds=30), 50)  # the third batch: not switched yet

    second = world.check(baseline, first, start + timedelta(minutes=1), batches_switched=2, final_wave=False)

    assert (first.functions_watched, second.functions_watched) == (2, 2)
    assert second.status == "baking"
    # A progress of another wave starts that wave's bake afresh (its window from its first check)
    world.errors("worker", start + timedelta(minutes=2, seconds=50), 50)
    next_wave = world.check(baseline, second, start + timedelta(minutes=2))
    assert (next_wave.checks, next_wave.waited_seconds, next_wave.batches_switched) == (1, 0, 3)
    assert next_wave.status == "regressed"


def test_a_finished_bake_is_answered_again_unchanged_and_a_foreign_progress_is_refused(world: World) -> None:
    baseline = world.baseline()
    start = T0 + timedelta(minutes=1)
    world.errors("dialer", start + timedelta(seconds=1), 99)
    regressed = world.check(baseline, None, start + timedelta(seconds=2))
    assert regressed.status == "regressed"

    # A retried check of a finished bake changes nothing
    assert world.check(baseline, regressed, start + timedelta(minutes=5)) == regressed
    # A progress from another baseline is refused
    other = baseline.model_copy(update={"sha256": "f" * 64})
    with pytest.raises(BakeRecordMismatch, match="another run"):
        world.check(other, regressed, start)
    # ... and a baseline record changed in S3 is not trusted
    world.engine.client("s3").put_object(Bucket="records", Key=baseline.key, Body=b"{}")
    with pytest.raises(RecordUnreadable):
        world.check(baseline, None, start)


def test_elasticache_nodes_by_endpoint_by_name_or_as_a_standalone_cluster(world: World) -> None:
    elasticache = world.engine.client("elasticache")
    group = elasticache.describe_replication_groups(ReplicationGroupId="campaign-redis")["ReplicationGroups"][
        0
    ]
    primary = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]

    by_endpoint = find_elasticache_nodes(primary.upper(), world.aws)
    by_name = find_elasticache_nodes("master.campaign-redis.zz9.use1.cache.amazonaws.com", world.aws)
    unknown = find_elasticache_nodes("other.abc.use1.cache.amazonaws.com:6379", world.aws)

    assert by_endpoint[0] == "campaign-redis"
    assert [(n.cache_cluster_id, n.cache_node_id) for n in by_endpoint[1]] == [("campaign-redis-001", "0001")]
    assert by_endpoint[2] == []
    assert by_name[0] == "campaign-redis"
    assert unknown[:2] == (None, [])
    assert "no replication group or cluster found behind other.abc.use1.cache.amazonaws.com" in unknown[2][0]


def test_2000_functions_are_read_in_requests_of_500_and_the_payloads_stay_small(world: World) -> None:
    # Given a plan of 2,000 functions with 64-character names (100 batches of 20)
    names = [f"campaign-system-production-dialer-worker-shard-{n:04d}".ljust(64, "x") for n in range(2000)]
    plans = [FunctionPlan(function_name=name, before={"REDIS_HOST": ENDPOINT}) for name in names]
    record = RecordLocation(bucket="records", prefix="machine/run-2000/")
    batches = write_batches(record, plans, world.aws)
    document = PlanDocument.model_validate(
        {
            **get_record(world.record, plan_key(world.record), world.plan_sha256, world.aws),
            "functions": [],
            "batches": [],
        }
    ).model_copy(update={"functions": plans, "batches": batches})
    digest = put_record(record, plan_key(record), document.to_json_dict(), world.aws)
    world.errors(names[1999], T0 - timedelta(minutes=2), 3)
    baseline = record_baseline(
        BaselineInput(record=record, plan_sha256=digest, bake_minutes=MINUTES, elasticache_endpoint=ENDPOINT),
        world.aws,
        now=T0,
    )
    start = T0 + timedelta(minutes=1)
    world.errors(names[1999], start + timedelta(seconds=10), 20)
    world.engine.elasticache_metrics.clock = lambda: start

    # When the last wave is checked (every function watched)
    check = check_bake(BakeCheckInput(record=record, baseline=baseline), world.aws, now=start)

    # Then 4,000 series and the node were read in 9 requests (at most 500 queries each)
    assert (baseline.function_count, baseline.errors, baseline.metric_requests) == (2000, 3, 9)
    assert (check.functions_watched, check.metric_requests) == (2000, 9)
    assert [(r.subject, r.observed, r.allowed) for r in check.regressions] == [(names[1999], 20, 11)]
    # ... and what travels in the execution stays small (the numbers per function are in S3)
    assert len(baseline.model_dump_json(by_alias=True)) < 2048
    assert len(check.model_dump_json(by_alias=True)) < 4096


# ---------------------------------------------------------------------------------------------
# The instance Redis shares (ReadHostHealth's reading against the preflight's inspect)


def machine(**changes: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "memTotalBytes": 4 * 1024**3,
        "cpus": 2,
        "load1": 0.9,
        "load5": 0.6,
        "swapInPages": 100,
        "swapOutPages": 300,
        "uptimeSeconds": 10_000.0,
        "memoryPressure": {"someAvg10": 0.0, "someAvg60": 1.5, "someTotalUs": 10},
    }
    figures.update(changes)
    return figures


def unit(name: str = "asterisk.service", **changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "unit": name,
        "loadState": "loaded",
        "activeState": "active",
        "mainPid": 900,
        "nRestarts": 0,
        "activeEnterUs": 5_000_000,
        "rssBytes": 600 * 1024**2,
    }
    facts.update(changes)
    return facts


HOST_BEFORE = {"machine": machine(), "coTenants": [unit(), unit("campaign-worker.service", mainPid=700)]}


def reading(*units: dict[str, Any], **figures: Any) -> dict[str, Any]:
    return {"ok": True, "machine": machine(**figures), "coTenants": list(units) or HOST_BEFORE["coTenants"]}


def test_a_quiet_instance_passes_and_its_figures_are_in_the_check(world: World) -> None:
    baseline = world.baseline()
    world.node_connections[0] = 2  # every client left ElastiCache
    checks = world.bake(
        baseline,
        T0 + timedelta(minutes=1),
        host=reading(uptimeSeconds=10_060.0),
        host_before=HOST_BEFORE,
    )
    assert checks[-1].status == "passed"
    host = checks[-1].host
    assert (host.read, host.co_tenants, host.co_tenants_active) == (True, 2, 2)
    assert (host.memory_pressure, host.load_per_cpu) == (1.5, 0.3)
    assert "instance: 2/2 co-tenants active, memory pressure 1.5%, load 0.3/CPU" in checks[-1].summary


@pytest.mark.parametrize(
    ("given", "code", "subject", "numbers"),
    [
        (reading(unit(activeState="failed"), unit("campaign-worker.service", mainPid=700)),
         "CoTenantDown", "asterisk.service", (0, 1, None)),
        (reading(unit(mainPid=901, activeEnterUs=9_000_000), unit("campaign-worker.service", mainPid=700)),
         "CoTenantRestarted", "asterisk.service", (1, 0, None)),
        (reading(memoryPressure={"someAvg60": 12.0}), "MemoryPressure", "instance", (12.0, 11.5, 1.5)),
        # 400 pages swapped in 10,000 s before (0.04/s); 30,000 more in the 60 s since
        (reading(swapInPages=20_100, swapOutPages=10_300, uptimeSeconds=10_060.0),
         "SwapActivity", "instance", (500.0, 256.04, 0.04)),
        (reading(load5=5.4), "HostLoad", "instance", (2.7, 2.3, 0.3)),
    ],
)  # fmt: skip
def test_the_instance_regresses_the_bake_like_a_function(
    world: World, given: dict[str, Any], code: str, subject: str, numbers: tuple[float, float, float | None]
) -> None:
    # Given the preflight's reading of the instance, and a bake that reads it worse
    baseline = world.baseline()

    check = world.check(baseline, None, T0 + timedelta(minutes=1), host=given, host_before=HOST_BEFORE)

    # Then it regresses at once, naming what, where, and the numbers
    assert check.status == "regressed"
    found = [(r.code, r.subject, (r.observed, r.allowed, r.baseline)) for r in check.regressions]
    assert found == [(code, subject, numbers)]
    assert f"{code} {subject}" in check.summary


def test_a_service_the_run_restarts_is_compared_with_its_first_reading_in_the_bake(world: World) -> None:
    # Given the worker restarted by CutOverHostServices before the bake (new pid)
    baseline = world.baseline()
    restarted = unit("campaign-worker.service", mainPid=750, activeEnterUs=8_000_000)
    start = T0 + timedelta(minutes=1)
    given = {"host_before": HOST_BEFORE, "restarted_by_run": ["campaign-worker.service"]}

    minute = timedelta(minutes=1)
    first = world.check(baseline, None, start, host=reading(unit(), restarted), **given)
    again = world.check(baseline, first, start + minute, host=reading(unit(), restarted), **given)
    twice = unit("campaign-worker.service", mainPid=760, activeEnterUs=9_000_000)
    later = world.check(baseline, again, start + 2 * minute, host=reading(unit(), twice), **given)

    # Then the run's own restart is not a regression, a second one is
    assert (first.status, again.status) == ("baking", "baking")
    assert first.host.marks == {"campaign-worker.service": "750/8000000/0"}
    assert later.status == "regressed"
    assert [(r.code, r.subject) for r in later.regressions] == [
        ("CoTenantRestarted", "campaign-worker.service")
    ]


def test_an_instance_unread_three_times_in_a_row_regresses_and_a_missing_psi_is_not_a_regression(
    world: World,
) -> None:
    baseline = world.baseline()
    start = T0 + timedelta(minutes=1)
    unread = {"ok": False, "reason": "HostInspectionFailed: SSM agent offline"}
    no_psi = reading(memoryPressure=None)
    checks = [world.check(baseline, None, start, host=no_psi, host_before=HOST_BEFORE)]
    for minute in range(1, 4):
        at = start + timedelta(minutes=minute)
        checks.append(world.check(baseline, checks[-1], at, host=unread, host_before=HOST_BEFORE))
    assert [c.status for c in checks] == ["baking", "baking", "baking", "regressed"]
    assert checks[0].host.memory_pressure is None
    assert checks[-1].regressions[0].code == "HostUnwatched"
    assert checks[-1].host.unreadable_streak == 3
    assert checks[-1].host.reason == "HostInspectionFailed: SSM agent offline"
