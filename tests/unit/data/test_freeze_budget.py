"""The freeze's estimate at preflight: every writer's timeout counts, the refusal names the ways on."""

from __future__ import annotations

from redis_migration.clients.preflight import FunctionFacts
from redis_migration.data.freeze_budget import estimate_freeze
from redis_migration.steps.check_preconditions import longest_writer_timeout


def test_a_version_an_alias_serves_counts_with_its_own_timeout() -> None:
    # Given $LATEST with 3 s, and an alias serving (and shifting weight to) versions published earlier
    configurations = [{"FunctionName": "worker", "Timeout": 3}, {"FunctionName": "api", "Timeout": 30}]
    facts = {
        "worker": FunctionFacts(
            versions={"4": {"Timeout": 60}, "5": {"Timeout": 900}},
            aliases=[
                {
                    "Name": "live",
                    "FunctionVersion": "4",
                    "RoutingConfig": {"AdditionalVersionWeights": {"5": 0.1}},
                }
            ],
        )
    }

    # Then the longest is the weighted version's, named by alias and version
    assert longest_writer_timeout(configurations, facts) == (900, "worker:live (version 5)")
    assert longest_writer_timeout(configurations, {}) == (30, "api")


def test_a_freeze_that_does_not_fit_names_each_figure_and_the_ways_on() -> None:
    estimate = estimate_freeze(
        longest_timeout=900,
        slowest_writer="worker",
        source_keys=1_000_000,
        functions=25,
        cutover_concurrency=10,
        max_freeze_seconds=300,
    )

    assert not estimate.fits
    assert (estimate.copy_and_verify, estimate.cutover, estimate.total) == (20, 30, 965)
    refusal = estimate.refusal()
    assert "about 965 s, longer than maxFreezeSeconds 300" in refusal
    assert "900 s for the invocations already running to end (worker's timeout)" in refusal
    assert "shorten the timeout of worker" in refusal
    assert "raise maxFreezeSeconds to at least 965" in refusal
    assert '"dataCopy": "warm"' in refusal


def test_a_small_freeze_fits() -> None:
    estimate = estimate_freeze(
        longest_timeout=30,
        slowest_writer="api",
        source_keys=10_000,
        functions=5,
        cutover_concurrency=10,
        max_freeze_seconds=300,
    )
    assert estimate.fits
    assert estimate.total == 30 + 1 + 10 + 15
