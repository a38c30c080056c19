"""Shared fixtures. Backends of the scaled mode (PostgreSQL, Redis) are real connections;
under CI=true they must be reachable, elsewhere a missing server skips those params."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from majlis.media.recording.storage import StorageSettings

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("MAJLIS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MAJLIS_TEST_REDIS", "redis://127.0.0.1:6379/0")


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
