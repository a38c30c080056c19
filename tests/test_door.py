"""Issue 13, R2: writes let into the application a few at a time, the rest waiting at the
door in order (majlis/serving/door.py). The door itself, with a fake clock; its use on
real connections is in test_holds.py."""

from __future__ import annotations

import random

import pytest

from majlis.serving.door import Door


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Waiter:
    """A connection with a write at the door; `gone` ones (closed, or refused as they
    are let in) take no place."""

    def __init__(self, name: str, let_in: list[tuple[str, float]], gone: bool = False) -> None:
        self.name, self._let_in, self.gone = name, let_in, gone

    def let_in(self, waited_s: float) -> bool:
        self._let_in.append((self.name, round(waited_s, 6)))
        return not self.gone


def test_writes_past_the_limit_wait_and_go_in_as_others_leave_in_order() -> None:
    clock = Clock()
    door, let_in = Door(2, clock), []
    assert door.enter() and door.enter()
    assert not door.enter()  # full
    for i, name in enumerate("abc"):
        clock.now += 0.01
        door.wait(Waiter(name, let_in))
        assert door.waiting == i + 1
    clock.now += 0.1
    door.left()
    assert let_in == [("a", 0.12)] and door.inside == 2 and door.waiting == 2
    assert not door.enter()  # b and c are first
    door.left()
    door.left()
    assert let_in == [("a", 0.12), ("b", 0.11), ("c", 0.1)]
    assert door.inside == 2 and door.waiting == 0 and door.waited == 3
    door.left()
    door.left()
    assert door.inside == 0 and door.enter()


def test_waiting_writes_go_in_by_the_batch_once_half_the_places_are_free() -> None:
    door, let_in = Door(4, Clock()), []
    for _ in range(4):
        assert door.enter()
    for name in "abcde":
        door.wait(Waiter(name, let_in))
    door.left()
    assert let_in == [] and door.inside == 3  # three of four still inside: none yet
    door.left()
    assert [name for name, _ in let_in] == ["a", "b"] and door.inside == 4
    door.left()
    door.left()
    assert [name for name, _ in let_in] == ["a", "b", "c", "d"] and door.waiting == 1


def test_a_waiter_gone_or_refused_takes_no_place() -> None:
    door, let_in = Door(1, Clock()), []
    assert door.enter()
    door.wait(Waiter("gone", let_in, gone=True))
    door.wait(Waiter("refused", let_in, gone=True))
    door.wait(Waiter("served", let_in))
    door.left()
    assert [name for name, _ in let_in] == ["gone", "refused", "served"]
    assert door.inside == 1 and door.waiting == 0


def test_a_door_lets_one_in_at_least() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Door(0)


def test_the_standing_wait_is_the_least_of_the_last_half_second() -> None:
    clock = Clock()
    door, let_in = Door(1, clock), []
    assert door.standing() == 0.0
    assert door.enter()
    clock.now += 0.6  # the last write to walk straight in did so longer ago than that
    assert door.standing() == 0.0  # and nobody waits
    door.wait(Waiter("a", let_in))
    clock.now += 0.3
    assert door.standing() == pytest.approx(0.3)  # none let in yet: the first in line
    door.wait(Waiter("b", let_in))
    clock.now += 0.1
    door.left()  # a goes in after 0.4 s
    clock.now += 0.2
    door.left()  # b after 0.3 s
    assert door.standing() == pytest.approx(0.3)
    door.wait(Waiter("c", let_in))
    clock.now += 0.45
    assert door.standing() == pytest.approx(0.3)  # b, 0.45 s ago, is still in the interval
    clock.now += 0.1
    assert door.standing() == pytest.approx(0.55)  # now c, waiting since, is what stands
    door.left()
    door.left()
    assert door.standing() == pytest.approx(0.55)  # c went in after waiting that long
    assert door.enter()
    assert door.standing() == 0.0  # a write walked in: the queue did not stand


def test_the_standing_wait_is_the_least_however_the_waits_come() -> None:
    """Against the plain minimum over the last half second, for waits in any order."""
    rng, clock = random.Random(7), Clock()
    door, let_in = Door(1, clock), []
    assert door.enter()
    clock.now += 0.6  # none walks straight in from here on
    history: list[tuple[float, float]] = []
    for _ in range(400):
        door.wait(Waiter("w", let_in))
        clock.now += rng.uniform(0.0, 0.2)
        door.left()  # the one inside leaves; the waiter goes in
        history.append((clock.now, let_in[-1][1]))
        clock.now += rng.uniform(0.0, 0.05)
        recent = [waited for at, waited in history if at >= clock.now - 0.5]
        assert door.standing() == pytest.approx(min(recent), abs=1e-6), len(history)
