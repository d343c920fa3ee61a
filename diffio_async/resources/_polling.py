"""When to poll a generation: the policy, the ramp, the finish estimate, and a shared budget.

:class:`PollPolicy` is what a caller sets. :class:`PollPlanner` decides each wait: it follows
the finish time that the server's progress predicts (and, in a batch, the pace learned from
finished items), and falls back to the ramp of :class:`PollSchedule` when progress says
nothing usable. :class:`PollBudget` caps the polls per second of every wait that shares it.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from ..errors import ConfigurationError
from ..types import GenerationProgress

__all__ = ["PollBudget", "PollPlanner", "PollPolicy", "PollSchedule"]

MIN_GAP = 0.25
"""The shortest wait between two polls that follow an estimate (seconds)."""
MIN_MARGIN = 0.05
"""How long after the estimated finish the confirming poll goes, at least (seconds)."""
AGREEMENT = 0.1
"""Two estimates agree when they differ by at most this share of the job's length so far."""


def _policy_number(
    *, above: float | None = None, at_least: float | None = None, at_most: float | None = None
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: a finite number within bounds, else :class:`ConfigurationError`."""
    wanted = " and ".join(
        f"{sign} {bound:g}"
        for sign, bound in ((">", above), (">=", at_least), ("<=", at_most))
        if bound is not None
    )

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        ok = number and math.isfinite(value)
        if ok and above is not None:
            ok = value > above
        if ok and at_least is not None:
            ok = value >= at_least
        if ok and at_most is not None:
            ok = value <= at_most
        if not ok:
            shown = repr(value) if number else type(value).__name__
            raise ConfigurationError(
                f"PollPolicy {attribute.name} must be a finite number {wanted}, not {shown}"
            )

    return check


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"PollPolicy {attribute.name} must be True or False, not {type(value).__name__}"
        )


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How :meth:`Generation.wait` polls.

    With ``follow_progress`` (the default) each wait aims at the finish time the server's
    progress predicts: two polls that saw the percentage move give a rate, and the next poll
    goes half-way to the predicted finish, or just after it once two predictions agree. A
    300 s job costs about 16 polls and is noticed well under 1 % late. When progress says
    nothing usable (still queued, not moving, or a poll failed) the ramp applies: the first
    wait is ``initial`` seconds; each poll multiplies it by ``factor`` up to ``maximum``;
    ``jitter`` spreads it (±10 % by default, never above ``maximum``). When the overall
    status changes (``queued`` -> ``processing``) the ramp's interval halves. A wait that
    follows an estimate is never longer than ``maximum`` or half the time waited so far,
    whichever is longer, so a wrong estimate costs little.

    Every value must be a finite number (``initial`` and ``maximum`` > 0, ``factor`` >= 1,
    ``jitter`` from 0 to 1); anything else (NaN, infinity, a negative, a string) raises
    :class:`~diffio_async.ConfigurationError` when the policy is built.
    """

    initial: float = attrs.field(default=1.0, validator=_policy_number(above=0))
    factor: float = attrs.field(default=1.5, validator=_policy_number(at_least=1))
    maximum: float = attrs.field(default=15.0, validator=_policy_number(above=0))
    jitter: float = attrs.field(default=0.1, validator=_policy_number(at_least=0, at_most=1))
    follow_progress: bool = attrs.field(default=True, validator=_flag)

    def schedule(self, *, rng: random.Random | None = None) -> PollSchedule:
        """A fresh ramp following this policy (without the progress estimate)."""
        return PollSchedule(self, rng or random.Random())


class PollSchedule:
    """The running state of a :class:`PollPolicy`'s ramp: call :meth:`next_delay` after each
    poll."""

    def __init__(self, policy: PollPolicy, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self._interval = policy.initial

    def next_delay(self, *, changed: bool) -> float:
        """The wait before the next poll; ``changed`` says whether the last poll had news."""
        policy = self.policy
        if changed:
            self._interval = max(policy.initial, self._interval / 2)
        delay = self._interval * self._rng.uniform(1 - policy.jitter, 1 + policy.jitter)
        self._interval = min(policy.maximum, self._interval * policy.factor)
        return max(0.0, min(policy.maximum, delay))


class PollPlanner:
    """Plans the polls of one wait: toward the predicted finish, else by the ramp.

    ``started`` is when the wait began (``anyio.current_time()``) and ``expected`` the
    seconds the job is expected to take from then (a batch learns it from finished items);
    ``None`` when unknown. Call :meth:`observe` with each answer, then :meth:`next_delay`.
    """

    def __init__(
        self,
        policy: PollPolicy,
        *,
        started: float,
        expected: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._ramp = policy.schedule(rng=rng)
        self._started = started
        self._prior = None if expected is None else started + expected
        self._seen: list[tuple[float, float]] = []  # (time, percent) where the percent moved
        self._last_target: float | None = None
        self._last_running: float | None = None  # when a poll last saw the job still running
        self.finished: float | None = None
        """Once a poll saw the job end: when it most likely ended (see :meth:`observe`)."""

    def observe(self, now: float, progress: GenerationProgress) -> None:
        """Record an answer: its percentage, when it moved and the job is still running.

        When the answer is terminal, :attr:`finished` becomes the best guess of when the job
        ended: the finish the progress predicted if it falls between the last poll that saw
        it running and this one, else the middle of that interval (the server may have ended
        it anywhere in there). A batch learns its pace from this, not from when it noticed.
        """
        percent = progress.percent
        if progress.is_terminal:
            if self.finished is None:
                self.finished = self._finish_between(self._last_running, now)
            return
        self._last_running = now
        if not 0 < percent < 100:
            return
        if self._seen and self._seen[-1][1] == percent:
            return
        self._seen = [*self._seen[-1:], (now, percent)]

    def _finish_between(self, running: float | None, ended: float) -> float:
        if running is None:
            return ended
        predicted = self.estimate()
        if predicted is not None and running < predicted <= ended:
            return predicted
        return (running + ended) / 2

    def estimate(self) -> float | None:
        """The finish time the last two moves of the percentage predict (``None``: unknown)."""
        if len(self._seen) < 2:
            return None
        (t1, p1), (t2, p2) = self._seen
        if t2 <= t1 or p2 <= p1:
            return None
        return t2 + (100 - p2) * (t2 - t1) / (p2 - p1)

    def next_delay(self, now: float, *, changed: bool) -> float:
        """The wait before the next poll, at ``now``; ``changed``: the status changed."""
        target = self.estimate() if self.policy.follow_progress else None
        if target is None and self.policy.follow_progress:
            target = self._prior
        length = max(0.0, (target or now) - self._started)
        margin = max(MIN_MARGIN, 0.005 * length)
        if target is None or target + margin <= now:
            self._last_target = None
            return self._ramp.next_delay(changed=changed)
        agreed = self._last_target is not None and abs(target - self._last_target) <= max(
            AGREEMENT * length, margin
        )
        self._last_target = target
        delay = target + margin - now if agreed else (target - now) / 2
        elapsed = now - self._started
        floor = max(MIN_GAP, 0.01 * elapsed)
        ceiling = max(self.policy.maximum, 0.5 * elapsed, floor)
        return min(max(delay, floor), ceiling)


class PollBudget:
    """At most ``per_second`` progress polls per second across every wait that shares it.

    A batch makes one, so thousands of waiting generations neither stampede the API nor
    starve: polls go out first come, first served, evenly spaced. ``per_second`` must be a
    finite number > 0 (:class:`~diffio_async.ConfigurationError`). One budget serves one event
    loop at a time (used from a new loop, it starts afresh there).
    """

    def __init__(self, per_second: float) -> None:
        number = isinstance(per_second, numbers.Real) and not isinstance(per_second, bool)
        if (
            not number
            or not math.isfinite(per_second)
            or per_second <= 0
            or not math.isfinite(1 / per_second)  # a subnormal rate would never poll
        ):
            shown = repr(per_second) if number else type(per_second).__name__
            raise ConfigurationError(
                f"PollBudget per_second must be a finite number > 0, not {shown}"
            )
        self.per_second = float(per_second)
        self._loop: object = None
        self._lock = anyio.Lock()
        self._next = -math.inf

    async def acquire(self) -> None:
        """Wait for the next free slot (fair: in arrival order)."""
        loop = anyio.lowlevel.current_token()
        if loop != self._loop:  # first use, or used from another event loop: start afresh
            self._loop, self._lock, self._next = loop, anyio.Lock(), -math.inf
        async with self._lock:
            now = anyio.current_time()
            if now < self._next:
                await anyio.sleep(self._next - now)
                now = anyio.current_time()
            self._next = max(now, self._next) + 1 / self.per_second
