"""Issue 13, R2: the share of writes refused follows the worker's delay (PIE), so that a
worker offered more than it can do goes on serving what it can and refuses the rest."""

from __future__ import annotations

import itertools
import statistics

import pytest

from majlis.api.shed_share import UPDATE_S, ShedShare


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def run(share: ShedShare, clock: Clock, delays: list[float]) -> list[float]:
    """One update per delay, UPDATE_S apart; the share after each."""
    out = []
    for delay in delays:
        clock.now += UPDATE_S
        out.append(share.update(delay))
    return out


def test_a_worker_at_or_under_its_target_refuses_nothing() -> None:
    clock = Clock()
    share = ShedShare(0.05, clock)
    assert max(run(share, clock, [0.0, 0.02, 0.05, 0.04, 0.05] * 200)) == 0.0


def test_a_moment_over_the_target_costs_almost_nothing() -> None:
    """A garbage collection or a burst: one update at five times the target."""
    clock = Clock()
    share = ShedShare(0.05, clock)
    shares = run(share, clock, [0.01] * 10 + [0.25] + [0.01] * 200)
    assert max(shares) < 0.002  # one write in 500, for an update or two
    assert shares[-1] < max(shares)  # and it decays


def test_a_standing_delay_raises_the_share_until_it_falls_away() -> None:
    clock = Clock()
    share = ShedShare(0.05, clock)
    rising = run(share, clock, [0.2] * int(2 / UPDATE_S))  # 2 s at four times the target
    assert all(b >= a for a, b in itertools.pairwise(rising))
    assert rising[-1] > 0.5
    falling = run(share, clock, [0.01] * int(4 / UPDATE_S))  # 4 s well under it
    assert all(b <= a for a, b in itertools.pairwise(falling))
    assert falling[-1] < 0.05


def test_the_share_changes_at_most_once_an_update() -> None:
    clock = Clock()
    share = ShedShare(0.05, clock)
    run(share, clock, [0.3] * 40)
    before = share.share
    for _ in range(100):  # a thousand requests in the same moment
        assert share.update(1.0) == before
    clock.now += 3600  # an idle hour counts as a few updates, not thousands
    assert share.update(0.3) <= before + 0.1


@pytest.mark.parametrize("offered", [2.0, 5.0])
def test_it_settles_where_the_worker_does_what_it_can(offered: float) -> None:
    """A worker that can serve 1,000 writes a second, offered `offered` times that: its
    queue grows with what is let in beyond what it serves, and the delay is the queue over
    the rate. PIE should hold the delay near the target, letting in about the capacity."""
    clock = Clock()
    target = 0.05
    share = ShedShare(target, clock)
    capacity, queue, delay = 1000.0, 0.0, 0.0
    delays, shares = [], []
    for _ in range(int(30 / UPDATE_S)):
        clock.now += UPDATE_S
        p = share.update(delay)
        let_in = offered * capacity * (1 - p)
        queue = max(0.0, queue + (let_in - capacity) * UPDATE_S)
        delay = queue / capacity
        delays.append(delay)
        shares.append(p)
    last = int(10 / UPDATE_S)  # the last 10 s
    assert target / 2 < statistics.mean(delays[-last:]) < target * 2
    expected = 1 - 1 / offered  # the share that lets in exactly the capacity
    assert abs(statistics.mean(shares[-last:]) - expected) < 0.05


def test_a_target_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ShedShare(0.0)
