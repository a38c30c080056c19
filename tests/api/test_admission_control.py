"""Issue 13: joins beyond what a worker can do get waiting-room tickets, and the waiting
room's rate follows the worker's measured queueing delay (AIMD, the configured rate a
ceiling). The delay is set by the test and time moves only when the test moves it, so
nothing here depends on how fast the machine is."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.conftest import Account, Harness, assert_error, running_harness
from majlis.api.overload import SPARE_FACTOR, LoopLag
from majlis.clock import FakeClock
from majlis.services.admission import (
    DECREASE,
    INCREASE,
    INTERVAL,
    AdmissionControl,
    AdmissionSettings,
)
from majlis.serving.door import Door

TARGET_S = 0.05


class SetLag(LoopLag):
    """A standing delay the test sets; nothing is measured."""

    def __init__(self) -> None:
        super().__init__()
        self.value = 0.0

    def standing(self) -> float:
        return self.value

    def latest(self) -> float:
        return self.value

    async def watch(self) -> None:
        return None


# the controller ----------------------------------------------------------------------------


def controller(
    ceiling: float = 100.0, burst: int = 200, floor: float = 5.0, target_s: float = TARGET_S
) -> tuple[AdmissionControl, SetLag, FakeClock]:
    lag, clock = SetLag(), FakeClock()
    settings = AdmissionSettings(ceiling, burst, floor, target_s)
    return AdmissionControl(settings, lag.standing, clock), lag, clock


def test_a_worker_that_keeps_up_admits_at_the_configured_rate() -> None:
    control, lag, clock = controller()
    lag.value = TARGET_S  # at the target is not above it
    for _ in range(10):
        limits = control.limits()
        assert (limits.rate, limits.burst, limits.behind) == (100.0, 200, False)
        clock.advance(INTERVAL)


def test_falling_behind_halves_the_rate_at_once_then_once_per_interval() -> None:
    control, lag, clock = controller()
    control.limits()
    lag.value = 0.2
    first = control.limits()  # no waiting for the interval to end
    assert first.behind and first.rate == 100.0 * DECREASE
    # Half a second's worth of the new rate at once, not the configured 200.
    assert first.burst == 25
    clock.advance(INTERVAL / 2)
    assert control.limits().rate == 50.0  # one decision per interval
    clock.advance(INTERVAL / 2)
    assert control.limits().rate == 25.0
    for _ in range(20):
        clock.advance(INTERVAL)
        limits = control.limits()
    assert limits.rate == 5.0, "never below the floor: the line always moves"
    assert limits.burst == 3  # ceil(5 * 0.5)


def test_the_rate_climbs_back_by_steps_to_the_ceiling_and_no_further() -> None:
    control, lag, clock = controller()
    lag.value = 1.0
    for _ in range(10):
        control.limits()
        clock.advance(INTERVAL)
    assert control.rate == 5.0
    lag.value = 0.0
    rates = []
    for _ in range(25):
        rates.append(control.limits().rate)
        clock.advance(INTERVAL)
    step = 100.0 * INCREASE
    assert rates[:3] == pytest.approx([5.0 + step, 5.0 + 2 * step, 5.0 + 3 * step])
    assert rates[-1] == 100.0 and max(rates) == 100.0
    assert control.limits().burst == 200 and not control.behind


def test_a_floor_above_the_ceiling_does_not_lift_the_rate_over_it() -> None:
    control, lag, _ = controller(ceiling=2.0, floor=5.0)
    lag.value = 1.0
    assert control.limits().rate == 2.0


def test_target_zero_keeps_the_configured_rate_whatever_the_delay() -> None:
    control, lag, clock = controller(target_s=0.0)
    lag.value = 10.0
    for _ in range(5):
        limits = control.limits()
        assert (limits.rate, limits.burst, limits.behind) == (100.0, 200, False)
        clock.advance(INTERVAL)


# over HTTP ---------------------------------------------------------------------------------


async def join(
    h: Harness, space_id: str, who: Account, ticket: str | None = None
) -> httpx.Response:
    body = {"ticket": ticket} if ticket else {}
    return await h.call("POST", f"/spaces/{space_id}/join", who, json=body)


async def members(h: Harness, n: int) -> list[Account]:
    """Anonymous ids, made before any delay is set (making one is a write, shed too)."""
    return [await h.anonymous() for _ in range(n)]


async def storm(
    h: Harness, space_id: str, crowd: list[Account]
) -> list[tuple[Account, httpx.Response]]:
    return [(who, await join(h, space_id, who)) for who in crowd]


class Waiter:
    """A write at the door that is never let in (the test only measures the wait)."""

    def let_in(self, waited_s: float) -> bool:
        raise AssertionError("no place frees in this test")


@pytest.mark.parametrize("late", ["", "loop", "door"])
async def test_a_late_worker_answers_a_join_storm_with_tickets(late: str, tmp_path: Path) -> None:
    """Rate 100/s, burst 100. Calm, 30 joins are all admitted; behind (and only then) the
    rate is 50/s with a burst of 25, so 25 are admitted and 5 wait in line. Behind is a
    late loop, or writes waiting at the door while the loop is calm (the door keeps it
    so: the wait moves there)."""
    lag, door_clock = SetLag(), [0.0]
    door = Door(1, lambda: door_clock[0])
    flags = {"admission_rate": 100.0, "admission_burst": 100, "admission_target_ms": 50.0}
    async with running_harness(tmp_path, lag=lag, door=door, **flags) as h:
        h.clock.freeze()  # tokens refill only when the test moves time
        host = await h.account("host")
        space = await h.create_space(host)
        crowd = await members(h, 40)
        assert all(r.status_code == 200 for _, r in await storm(h, space["id"], crowd[:10]))
        if late == "loop":
            lag.value = 0.2
        elif late == "door":
            assert door.enter()  # the harness calls the app directly: nothing passes it
            door.wait(Waiter())
            door_clock[0] += 1.0
            assert door.standing() == 1.0
        answers = await storm(h, space["id"], crowd[10:])
        statuses = [r.status_code for _, r in answers]
        if not late:
            assert statuses == [200] * 30
            return
        assert statuses == [200] * 25 + [202] * 5, statuses
        queued = [(who, r.json()) for who, r in answers[25:]]
        for position, (_, body) in enumerate(queued, start=1):
            assert body["status"] == "queued" and body["position"] == position
            # The wait is estimated at the rate the worker can afford, not the ceiling.
            assert body["estimated_wait_ms"] == int(position / 50.0 * 1000)
        tickets = [(who, body["ticket"]) for who, body in queued]
        again = await join(h, space["id"], tickets[0][0], tickets[0][1])
        assert again.status_code == 202  # no time has passed: still in line
        h.clock.advance(0.1)  # 0.1 s at 50/s: five places
        for who, ticket in tickets:
            admitted = await join(h, space["id"], who, ticket)
            assert admitted.status_code == 200, admitted.text
            assert admitted.json()["playback_token"].startswith("play.")
        assert h.services.admission.rate == 50.0


async def test_the_rate_recovers_once_the_worker_keeps_up(tmp_path: Path) -> None:
    lag = SetLag()
    flags = {"admission_rate": 100.0, "admission_burst": 100, "admission_target_ms": 50.0}
    async with running_harness(tmp_path, lag=lag, **flags) as h:
        h.clock.freeze()
        host = await h.account("host")
        space = await h.create_space(host)
        crowd = await members(h, 43)
        lag.value = 0.2
        for who in crowd[:3]:
            await join(h, space["id"], who)
            h.clock.advance(INTERVAL)
        assert h.services.admission.rate == 100.0 * DECREASE**3
        lag.value = 0.0
        for who in crowd[3:]:
            await join(h, space["id"], who)
            h.clock.advance(INTERVAL)
        assert h.services.admission.rate == 100.0
        metrics = await h.client("127.0.0.1").get("/metrics")
        assert "majlis_admission_rate 100" in metrics.text
        assert "majlis_admission_behind 0" in metrics.text


async def test_joins_get_tickets_while_other_writes_are_shed(tmp_path: Path) -> None:
    """While writes are shed, other writes get 503; joins keep getting answers from the
    waiting room until the delay is SPARE_FACTOR times the shedding target."""
    lag = SetLag()
    flags = {
        "admission_rate": 100.0,
        "admission_burst": 100,
        "admission_target_ms": 50.0,
        "overload_target_ms": 150.0,
    }
    async with running_harness(tmp_path, lag=lag, **flags) as h:
        h.clock.freeze()
        host = await h.account("host")
        space = await h.create_space(host)
        crowd = await members(h, 31)
        lag.value = 0.2
        # As after the delay has stood over the target a while (tests/api/test_shed_share.py
        # has how the share gets there).
        assert h.services.shedding.share is not None
        h.services.shedding.share.share = 1.0
        refused = await h.call("POST", "/spaces", host, json={"title": "another"})
        assert_error(refused, 503, "overloaded")
        assert 1 <= int(refused.headers["retry-after"]) <= 3
        answers = [r.status_code for _, r in await storm(h, space["id"], crowd[:30])]
        assert answers == [200] * 25 + [202] * 5
        lag.value = 0.15 * SPARE_FACTOR + 0.01
        assert_error(await join(h, space["id"], crowd[30]), 503, "overloaded")
