"""The bake, the copy back and the host services as the real ASL runs them.

After VerifyCutover (and the unfreeze), CheckBake watches the switched functions for
``bakeMinutes``; a regression rolls the run back by itself. In consistent mode the writers are
frozen again first and what they wrote on the self-hosted Redis since the cutover is copied back
to ElastiCache, so going back loses nothing. ``hostServices`` are switched with the functions and
put back by the rollback, also by a rollback days later.
"""

from __future__ import annotations

from typing import Any

import redis

from redis_migration_ops.audit.render import render_markdown
from redis_migration_ops.audit.report import build_report
from redis_migration_ops.local_engine.stepfunctions.instant_waits import WaitRecord
from redis_migration_ops.rehearsal.client_traffic import simulate_client_traffic
from redis_migration_ops.rehearsal.migration import LocalSetup
from redis_migration_ops.rehearsal.sandbox_redis import write_client_keys
from tests.statemachine.conftest import differences
from tests.statemachine.test_host_services_steps import add_worker, printed_env

BAKE_MINUTES = 3
WORKER = "campaign-worker"


def traffic(setup: LocalSetup, failing: tuple[str, ...] = ()) -> None:
    simulate_client_traffic(setup.engine, setup.account, history_minutes=BAKE_MINUTES, failing=failing)


def test_a_quiet_bake_passes_and_is_in_the_output(setup: LocalSetup) -> None:
    # Given clients with steady traffic and a few errors
    traffic(setup)
    # When the migration bakes for three minutes
    run = setup.run({"bakeMinutes": BAKE_MINUTES}, name="bake-passes")
    # Then it succeeds after checking every minute, with the numbers in its output
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    bake = run.output["bake"]
    assert bake["status"] == "passed"
    assert bake["checks"] >= BAKE_MINUTES
    assert bake["functionsWatched"] == len(setup.account.client_functions)
    assert bake["selfHosted"]["read"] is True
    assert run.states_entered.index("VerifyCutover") < run.states_entered.index("CheckBake")
    assert "RecordBaseline" in run.states_entered


def test_a_consistent_migration_with_steady_traffic_passes_a_15_minute_bake(setup: LocalSetup) -> None:
    # Given ElastiCache with keys, and clients with steady, busy traffic (10 calls a second each)
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(100)
    simulate_client_traffic(setup.engine, setup.account, history_minutes=15, invocations_per_minute=600)
    # When a consistent migration freezes the writers (every call to them is throttled meanwhile)
    # and then bakes for 15 minutes
    run = setup.run({"dataCopy": "consistent", "bakeMinutes": 15}, name="consistent-bake-15")
    # Then the bake passes: its window starts at the first whole minute after the unfreeze
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    bake = run.output["bake"]
    assert bake["status"] == "passed"
    assert bake["throttles"] == 0
    # ... and the freeze's own throttles are reported apart, not judged
    assert bake["freezeThrottles"] >= len(setup.account.client_functions)
    assert "the write freeze's own throttles, not judged" in bake["summary"]
    entered = run.states_entered
    assert entered.index("UnfreezeWriters") < entered.index("CheckBake")


def test_a_regression_rolls_back_by_itself_and_leaves_everything_as_before(setup: LocalSetup) -> None:
    # Given a function that fails once it uses the new Redis
    failing = setup.account.client_functions[1]
    traffic(setup, failing=(failing,))
    before = setup.snapshot()
    # When the migration bakes
    run = setup.run({"bakeMinutes": BAKE_MINUTES}, name="bake-regresses")
    after = setup.snapshot()
    # Then the bake names the function and the rollback puts everything back
    assert run.described["status"] == "FAILED"
    assert run.described["error"] == "BakeRegressed"
    assert f"FunctionErrors {failing}" in run.described["cause"]
    assert before == after, differences(before, after)


def test_a_regression_after_a_consistent_copy_carries_the_writes_since_the_cutover_back(
    setup: LocalSetup,
) -> None:
    # Given ElastiCache with keys, a function that fails on the new Redis, and clients that write
    # 40 keys to the self-hosted Redis while the bake waits
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(300)
    traffic(setup, failing=(setup.account.client_functions[0],))
    written: list[int] = []

    def clients_write(record: WaitRecord) -> None:
        if record.state_name == "WaitForBake" and not written:
            password = setup.password()
            assert password is not None
            written.append(write_client_keys(setup.sandbox, password, 40, prefix="during-bake"))

    setup.engine.on_wait(clients_write)
    before = setup.snapshot()
    # When the consistent migration bakes and regresses
    run = setup.run({"dataCopy": "consistent", "bakeMinutes": BAKE_MINUTES}, name="bake-copy-back")
    after = setup.snapshot()
    # Then the writers were frozen again, the writes copied back, and the functions restored
    assert written, "the clients never wrote during the bake"
    entered = run.states_entered
    assert (
        entered.index("RefreezeWriters") < entered.index("CopyDataBack") < entered.index("RestoreFunctions")
    )
    assert run.described["status"] == "FAILED", run.described.get("cause")
    source: Any = redis.Redis(**setup.elasticache.connection_kwargs())
    try:
        bake_keys = list(source.scan_iter(match="during-bake*", count=1000))
        assert len(bake_keys) == 40
        assert before.source is not None
        assert source.dbsize() == before.source.count + 40
    finally:
        source.close()
    # Everything else as before: functions, their concurrency, rules, the host (emptied again)
    changed = differences(before, after)
    assert set(changed) == {"(elasticache)"}, changed
    # And the audit report says what came back and why
    markdown = render_markdown(build_report(run.described, run.history, exit_code=3, outcome="rolled back"))
    assert "## Bake" in markdown
    assert "regressed" in markdown
    assert "copied back to ElastiCache:" in markdown


def test_host_services_are_switched_with_the_functions_and_put_back_by_a_later_rollback(
    setup: LocalSetup,
) -> None:
    # Given the guide's worker on the instance, reading REDIS_HOST from its environment file
    add_worker(setup, WORKER)
    before = setup.snapshot()
    # When the migration switches it with the functions
    run = setup.run({"hostServices": [WORKER]}, name="with-worker")
    # Then the worker runs against the local Redis
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    assert printed_env(setup, WORKER)["REDIS_HOST"] == "127.0.0.1"
    assert run.output["hostServices"]["changed"] is True
    markdown = render_markdown(build_report(run.described, run.history, exit_code=0, outcome="migrated"))
    assert "## Host services" in markdown
    assert "/etc/default/campaign-worker" in markdown
    # And a rollback days later puts its environment file back exactly
    rollback = setup.run({"rollbackOf": run.execution_arn}, name="rollback-with-worker")
    assert rollback.described["status"] == "SUCCEEDED", rollback.described.get("cause")
    assert "RestoreHostServices" in rollback.states_entered
    after = setup.snapshot()
    assert after.services == before.services
    assert printed_env(setup, WORKER).get("REDIS_HOST") != "127.0.0.1"


def test_canary_waves_switch_one_function_bake_it_then_the_rest(setup: LocalSetup) -> None:
    # Given steady clients
    traffic(setup)
    # When the migration goes in two waves: one function, then all
    run = setup.run({"cutoverWaves": [1, "100%"], "bakeMinutes": 2}, name="two-waves")
    # Then each wave is switched, verified and baked before the next
    assert run.described["status"] == "SUCCEEDED", run.described.get("cause")
    assert run.output["waves"] == 2
    entered = run.states_entered
    assert entered.count("CutOverFunctions") == 2
    first, second = (i for i, name in enumerate(entered) if name == "CutOverFunctions")
    assert entered[first:second].count("CutOverFunction") == 1
    assert "CheckBake" in entered[first:second]
    assert entered[second:].count("CutOverFunction") == len(setup.account.client_functions) - 1
    assert run.output["cutover"]["changed"] == len(setup.account.client_functions)


def test_a_regression_in_the_first_wave_rolls_back_one_function_and_never_touches_the_rest(
    setup: LocalSetup,
) -> None:
    # Given the first function of the plan (by name) fails on the new Redis
    first = sorted(setup.account.client_functions)[0]
    traffic(setup, failing=(first,))
    before = setup.snapshot()
    # When the migration goes in waves
    run = setup.run({"cutoverWaves": [1, "100%"], "bakeMinutes": 2}, name="first-wave-regresses")
    after = setup.snapshot()
    # Then the first wave's bake rolls back the one function; the second wave never ran
    assert run.described["error"] == "BakeRegressed"
    assert f"FunctionErrors {first}" in run.described["cause"]
    assert run.states_entered.count("CutOverFunction") == 1
    assert before == after, differences(before, after)


def test_waves_with_a_consistent_copy_are_refused_before_anything_changes(setup: LocalSetup) -> None:
    # Given ElastiCache holds keys (so the default mode is consistent)
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(50)
    before = setup.snapshot()
    # When waves are asked for
    run = setup.run({"cutoverWaves": [1, "100%"]}, name="waves-consistent")
    # Then the run is refused at the preflight, naming both fields, and nothing changed
    assert run.described["status"] == "FAILED"
    assert "cutoverWaves: 2 canary waves with dataCopy consistent" in run.described["cause"]
    assert "CutOverFunctions" not in run.states_entered
    assert before == setup.snapshot()


def test_a_failure_in_the_second_wave_puts_back_the_first_wave_too(setup: LocalSetup) -> None:
    # Given the second wave's second switch fails (the first wave is switched and baked by then)
    traffic(setup)
    setup.engine.fail_at("CutOverFunction", 3)
    before = setup.snapshot()
    # When the migration goes in waves
    run = setup.run({"cutoverWaves": [1, "100%"], "bakeMinutes": 2}, name="second-wave-fails")
    after = setup.snapshot()
    # Then every function, of both waves, is back as it was
    entered = run.states_entered
    assert entered.count("CutOverFunctions") == 2
    assert "RestoreFunctions" in entered
    assert run.described["status"] == "FAILED"
    assert before == after, differences(before, after)


def test_an_unfreeze_that_fails_part_way_copies_back_before_the_functions_go_back(setup: LocalSetup) -> None:
    # Given a consistent copy whose unfreeze fails at its second batch (the first batch's writers
    # already run on the self-hosted Redis)
    assert setup.elasticache is not None
    setup.elasticache.seed_keys(100)
    setup.engine.fail_at("UnfreezeFunction", 2)
    before = setup.snapshot()
    # When the workflow rolls back
    run = setup.run({"dataCopy": "consistent"}, name="unfreeze-fails")
    after = setup.snapshot()
    # Then the writers are frozen again and their writes copied back before the restore
    entered = run.states_entered
    assert (
        entered.index("RefreezeWriters") < entered.index("CopyDataBack") < entered.index("RestoreFunctions")
    )
    assert before == after, differences(before, after)
