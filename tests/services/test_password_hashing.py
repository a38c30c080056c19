"""Password hashing runs one at a time per worker, with a bounded line (issue 13: a login
flood stretched other clients' reads to 1.7 s). No timing: the work blocks on events."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from majlis.errors import Overloaded
from majlis.services.accounts import PasswordHashing, _hasher, _verify


class BlockedWork:
    """Work that waits for `release`, recording how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started = 0

    def __call__(self, value: str) -> str:
        with self.lock:
            self.running += 1
            self.started += 1
            self.most = max(self.most, self.running)
        self.release.wait(10)
        with self.lock:
            self.running -= 1
        return value


async def test_one_hash_at_a_time_and_a_bounded_line() -> None:
    hashing = PasswordHashing(max_waiting=3)
    work = BlockedWork()
    admitted = [asyncio.ensure_future(hashing.run(work, str(i))) for i in range(4)]
    await asyncio.sleep(0)  # all four are in line (one running, three waiting)
    assert hashing.pending == 4
    with pytest.raises(Overloaded) as refused:
        await hashing.run(work, "fifth")
    assert refused.value.status == 503
    assert refused.value.retry_after_ms >= 1000
    work.release.set()
    assert await asyncio.gather(*admitted) == ["0", "1", "2", "3"]
    assert work.most == 1, "hashes ran side by side"
    assert work.started == 4
    assert hashing.pending == 0
    # The line drained: a new one is taken again.
    assert await hashing.run(work, "again") == "again"


async def test_a_caller_that_goes_away_keeps_its_place_counted() -> None:
    hashing = PasswordHashing(max_waiting=0)
    work = BlockedWork()
    first = asyncio.ensure_future(hashing.run(work, "first"))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The thread still hashes for the caller that left: the worker is still busy.
    with pytest.raises(Overloaded):
        await hashing.run(work, "second")
    work.release.set()
    for _ in range(1000):  # the thread finishes the abandoned hash
        if not hashing.pending:
            break
        await asyncio.sleep(0.01)
    assert await hashing.run(work, "third") == "third"


def test_hashes_of_the_old_parameters_still_verify() -> None:
    old = PasswordHasher().hash("password-1")  # argon2-cffi's defaults: 4 lanes
    assert "p=4" in old
    assert _verify(old, "password-1")
    assert not _verify(old, "password-2")
    new = _hasher.hash("password-1")
    assert "p=1" in new
    assert _verify(new, "password-1")
