"""The pace a batch learns from finished items: per model, by media size."""

from __future__ import annotations

import pytest

from diffio_async.workflows._pace import Pace

MIB = 1024 * 1024


def test_nothing_learned_means_no_estimate() -> None:
    pace = Pace()
    assert pace.expect("diffio-3.5", MIB) is None
    pace.learn("diffio-3.5", MIB, 10)
    assert pace.expect("diffio-2", MIB) is None  # another model: its own pace


def test_one_size_gives_the_median_duration() -> None:
    pace = Pace()
    for seconds in (10, 11, 30):
        pace.learn("m", MIB, seconds)
    assert pace.expect("m", MIB) == 11
    assert pace.expect("m", 5 * MIB) == 11  # nothing says how size matters yet


def test_several_sizes_give_a_fixed_part_plus_seconds_per_mib() -> None:
    pace = Pace()
    for mib in (1, 2, 4, 8):
        pace.learn("m", mib * MIB, 3 + 2 * mib)  # 3 s + 2 s per MiB
    assert pace.expect("m", 6 * MIB) == pytest.approx(15)
    assert pace.expect("m", MIB // 2) == pytest.approx(4)
    # Far past what it was fitted on, the line is capped at 4 medians (4 x 9 s).
    assert pace.expect("m", 100 * MIB) == pytest.approx(36)


def test_sizes_a_few_bytes_apart_fit_no_line() -> None:
    pace = Pace()
    pace.learn("m", 1, 10)
    pace.learn("m", 2, 20)  # "10 s per byte" would expect 10^9 s of a 100 MiB file
    assert pace.expect("m", 100 * MIB) == pytest.approx(15)


def test_a_fit_that_makes_no_sense_falls_back_to_the_median() -> None:
    pace = Pace()
    pace.learn("m", MIB, 20)
    pace.learn("m", 10 * MIB, 5)  # bigger but faster: a negative slope
    assert pace.expect("m", 4 * MIB) == pytest.approx(12.5)


def test_zero_or_negative_durations_are_not_learned() -> None:
    pace = Pace()
    pace.learn("m", MIB, 0)
    pace.learn("m", MIB, -1)
    assert pace.expect("m", MIB) is None
