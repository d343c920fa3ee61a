"""The items a batch keeps in flight under 429s: cut only on sustained rate limiting, by a
quarter, at most once per typical item duration, and grown back quickly (the rule is in
``workflows/_adaptive.py``). Time is a plain counter here: no event loop, no sleeps."""

from __future__ import annotations

import random

from diffio_async import RateLimitError
from diffio_async.workflows._adaptive import AdaptiveLimit

LIMITED = RateLimitError("slow down", status_code=429)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_429s_that_arrive_at_random_keep_the_batch_near_full_speed() -> None:
    clock, rng = Clock(), random.Random(11)
    adaptive = AdaptiveLimit(64, typical_seconds=lambda: 10.0, clock=clock)
    limits = []
    for _ in range(20_000):  # 2,000 s: about 40 requests/s, 10 % of them answered 429,
        clock.now += 0.025  # and an item finishing every 0.2 s
        if rng.random() < 0.1:
            adaptive.on_failure(LIMITED)
        elif rng.random() < 0.125:
            adaptive.on_success()
        limits.append(adaptive.limit)
    assert min(limits) >= 48  # never more than one quarter cut at a time
    assert sum(limits) / len(limits) >= 0.9 * 64


def test_sustained_429s_cut_by_a_quarter_once_per_item_duration_down_to_an_eighth() -> None:
    clock = Clock()
    adaptive = AdaptiveLimit(64, typical_seconds=lambda: 10.0, clock=clock)
    cuts = []
    for _ in range(400):  # 40 s of 429s only, 10 per second
        clock.now += 0.1
        adaptive.on_failure(LIMITED)
        cuts.append(adaptive.limit)
    assert sorted(set(cuts), reverse=True) == [64, 48, 36, 27, 21]  # 4 cuts in 40 s
    for _ in range(400):
        clock.now += 0.1
        adaptive.on_failure(LIMITED)
    assert adaptive.limit == 8  # the floor: an eighth of the maximum, never one item


def test_once_429s_stop_a_few_finished_items_restore_full_speed() -> None:
    clock = Clock()
    adaptive = AdaptiveLimit(64, clock=clock)
    for _ in range(2000):
        clock.now += 0.1
        adaptive.on_failure(LIMITED)
    assert adaptive.limit == 8
    for _ in range(14):  # 4 more per finished item
        adaptive.on_success()
    assert adaptive.limit == 64


def test_a_few_429s_and_other_failures_cut_nothing() -> None:
    clock = Clock()
    adaptive = AdaptiveLimit(16, clock=clock)
    for _ in range(3):
        adaptive.on_failure(LIMITED)
    adaptive.on_failure(ConnectionError("reset"))
    assert adaptive.limit == 16
    adaptive.on_failure(LIMITED)  # the fourth within the default 10 s: sustained
    assert adaptive.limit == 12


def test_a_small_batch_never_goes_below_one() -> None:
    clock = Clock()
    adaptive = AdaptiveLimit(1, clock=clock)
    for _ in range(100):
        clock.now += 1
        adaptive.on_failure(LIMITED)
    assert adaptive.limit == 1
