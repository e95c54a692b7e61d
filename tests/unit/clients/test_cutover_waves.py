"""Canary waves: ``cutoverWaves`` validated at the input, split over the plan's batches."""

from __future__ import annotations

import itertools

import pytest
from redis_migration.clients.waves import plan_waves
from redis_migration.errors import InvalidInput
from redis_migration.models import CutoverWave, MigrationInput, PlanBatch, parse_model
from redis_migration.records import batch_size


def batches_for(function_count: int) -> list[PlanBatch]:
    """The batches records.write_batches makes for that many functions (sizes only)."""
    size = batch_size(function_count)
    counts = [min(size, function_count - start) for start in range(0, function_count, size)]
    return [PlanBatch(index=i, sha256="0" * 64, count=c, label=f"f{i}") for i, c in enumerate(counts)]


def ranges(waves: list[CutoverWave]) -> list[tuple[int, int, int]]:
    return [(w.start_batch, w.end_batch, w.functions) for w in waves]


def test_without_waves_every_batch_is_one_wave() -> None:
    waves, notes = plan_waves(None, batches_for(7))

    assert ranges(waves) == [(0, 7, 7)]
    assert waves[0].last
    assert waves[0].target == "100%"
    assert notes == []


def test_one_function_then_ten_percent_then_all_on_a_small_plan() -> None:
    # Given 50 functions: one function per batch
    waves, notes = plan_waves([1, "10%", "100%"], batches_for(50))

    # Then the canary is one function, then 5 (10% of 50) in all, then the rest
    assert ranges(waves) == [(0, 1, 1), (1, 5, 4), (5, 50, 45)]
    assert [w.functions_through for w in waves] == [1, 5, 50]
    assert [w.last for w in waves] == [False, False, True]
    assert [w.index for w in waves] == [0, 1, 2]
    assert notes == []


def test_targets_round_up_to_whole_batches_on_a_large_plan() -> None:
    # Given 2,000 functions: 100 batches of 20
    waves, notes = plan_waves([1, "10%", "100%"], batches_for(2000))

    # Then "1" is the first batch (20 functions): a batch is one Map iteration
    assert ranges(waves) == [(0, 1, 20), (1, 10, 180), (10, 100, 1800)]
    assert sum(w.functions for w in waves) == 2000
    assert notes == []


def test_a_wave_that_adds_no_batch_is_merged_and_said_so() -> None:
    # Given 2,000 functions, where 1 function and 1% (20) are the same first batch
    waves, notes = plan_waves([1, "1%", "100%"], batches_for(2000))

    assert ranges(waves) == [(0, 1, 20), (1, 100, 1980)]
    assert notes == ["cutoverWaves[1] (1%) adds no batch to wave 1 at 2000 functions; merged into it"]


def test_a_target_beyond_the_function_count_is_every_function() -> None:
    waves, notes = plan_waves([50, "100%"], batches_for(10))

    assert ranges(waves) == [(0, 10, 10)]
    assert notes == ["cutoverWaves[1] (100%) adds no batch to wave 1 at 10 functions; merged into it"]


def test_a_share_is_never_an_empty_canary() -> None:
    waves, _ = plan_waves(["1%", "100%"], batches_for(15))

    assert ranges(waves) == [(0, 1, 1), (1, 15, 14)]


def test_a_target_that_goes_backwards_once_the_count_is_known_is_refused() -> None:
    with pytest.raises(
        InvalidInput, match=r"cutoverWaves\[1\]: '1%' is 10 of 1000 functions, fewer than the 50"
    ):
        plan_waves([50, "1%", "100%"], batches_for(1000))


def test_waves_are_contiguous_and_cover_every_batch_at_every_size() -> None:
    for count in (1, 2, 9, 10, 99, 100, 101, 250, 1999, 2000):
        batches = batches_for(count)
        waves, _ = plan_waves([1, "5%", "25%", "50%", "100%"], batches)
        assert waves[0].start_batch == 0
        assert waves[-1].end_batch == len(batches)
        assert all(a.end_batch == b.start_batch for a, b in itertools.pairwise(waves))
        assert sum(w.functions for w in waves) == count
        assert [w.last for w in waves].count(True) == 1


@pytest.mark.parametrize(
    ("waves", "message"),
    [
        ([], "give 1 to 5 waves, not 0"),
        ([1, 2, 3, 4, "50%", "100%"], "give 1 to 5 waves, not 6"),
        ([1, "10%"], "the last wave must be '100%'"),
        ([1, 5], "the last wave must be '100%'"),
        ([5, 5, "100%"], "[1]: 5 functions is not more than the wave before it"),
        (["50%", "10%", "100%"], "[1]: 10% is not more than the wave before it"),
        ([0, "100%"], "[0]: 0 is not a number of functions from 1 to 2000"),
        (["10", "100%"], "[0]: '10' is neither a number of functions nor a share"),
        (["150%"], "[0]: '150%' is neither a number of functions nor a share"),
        ([True, "100%"], "cutoverWaves.0"),
        ([1.5, "100%"], "cutoverWaves.0"),
    ],
)
def test_bad_waves_are_refused_naming_the_field_and_the_element(waves: list[object], message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_model(MigrationInput, {"cutoverWaves": waves})

    assert "cutoverWaves" in str(raised.value)
    assert message in str(raised.value)


def test_good_waves_are_kept_as_given() -> None:
    given = parse_model(MigrationInput, {"cutoverWaves": [1, "10%", "100%"]})

    assert given.cutover_waves == [1, "10%", "100%"]
