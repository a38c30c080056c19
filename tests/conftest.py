"""Shared fixtures. Backends of the scaled mode (PostgreSQL, Redis) are real connections;
under CI=true they must be reachable, elsewhere a missing server skips those params."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from majlis.media.recording.storage import StorageSettings

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("MAJLIS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# Redis's 16 databases, split between the test processes (pytest-xdist's workers, at most
# two): each has eight of its own, so that two halves of one run never meet.
_REDIS = os.environ.get("MAJLIS_TEST_REDIS", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
if _WORKER > 1:
    raise RuntimeError("the tests share Redis between two processes at most (pytest -n 2)")


def redis_url(db: int) -> str:
    """Database `db` (0–7) of this test process's share of Redis."""
    if not 0 <= db < 8:
        raise ValueError(f"a test process has Redis databases 0–7, not {db}")
    return f"{_REDIS}/{db + 8 * _WORKER}"


REDIS_URL = redis_url(0)


def require_service(name: str, reachable: bool) -> None:
    """Skip outside CI when a scaled-mode server is missing; fail loudly in CI."""
    if reachable:
        return
    if IN_CI:
        pytest.fail(f"{name} is not reachable and CI=true: scaled-mode tests must run")
    pytest.skip(f"{name} not reachable")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto in server mode) for the whole session; tests take buckets."""
    from s3_support import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_settings(s3_endpoint: str) -> StorageSettings:
    """A fresh bucket on the session's S3 API."""
    from s3_support import new_bucket, settings_for

    return settings_for(s3_endpoint, new_bucket(s3_endpoint))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A test marked `realtime` (it checks audio for gaps, or how soon something happens
    on the wall clock) runs while the other test process waits: two processes' servers,
    browsers and encoders on two cores would starve it of the CPU it measures. The others
    share the machine. Outside pytest-timeout's wrapper (tryfirst), so that the wait does
    not count against a test's timeout."""
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one test process: nothing to share
        yield
        return
    # xdist gives each worker a base directory inside the run's own.
    base = Path(item.config.option.basetemp).parent / "machine"
    with _machine(base, alone=item.get_closest_marker("realtime") is not None):
        yield


@contextlib.contextmanager
def _machine(base: Path, *, alone: bool) -> Iterator[None]:
    """A readers-writer lock between processes (flock). A test that wants the machine
    alone holds the turnstile while it waits, so that tests starting meanwhile queue
    behind it instead of starving it; the others only pass through the turnstile."""
    with open(f"{base}.turnstile", "a") as turnstile, open(f"{base}.lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
