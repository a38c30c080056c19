"""Recordings in an S3-compatible object store, behind our own small seam.

`ObjectStore` is all the media plane knows of a store: keys are `{space}/{file name}`
below the configured prefix. `S3Store` implements it with obstore (Rust's object_store):
native sync and async APIs (the packager's writer thread blocks, the origin streams on
the event loop), no botocore version pins, typed. No obstore type leaves this module.

`PatientStore` wraps a store for the packager's writer thread: a put or get that fails is
retried with a capped backoff until the store answers, so an outage makes the writer fall
behind (push() never blocks) instead of losing anything, up to the packager's bound on
what waits (beyond it, silence is recorded: media/hls/packager.py). It logs one warning
when an outage starts and one line when it ends, not a traceback per retry.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store as _ObstoreS3

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

__all__ = [
    "ObjectStore",
    "PatientStore",
    "S3Store",
    "StorageError",
    "StorageSettings",
    "StoredObject",
    "open_object_store",
    "parse_storage_url",
]

log = logging.getLogger(__name__)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_STREAM_CHUNK = 64 * 1024
T = TypeVar("T")


class StorageError(Exception):
    """The object store could not be reached or refused a request (one-line reason)."""


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where recordings are kept besides the local disk (config keys storage_*)."""

    url: str  # s3://bucket[/prefix]
    endpoint: str = ""  # an S3-compatible API; "" is AWS
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object being read: what an HTTP answer needs before the bytes, then the bytes."""

    size: int
    etag: str | None
    modified: float  # seconds since the epoch
    chunks: AsyncIterator[bytes]


class ObjectStore(Protocol):
    @property
    def location(self) -> str:
        """Where it is, for messages (no credentials)."""
        ...

    def put(self, key: str, data: bytes | Path) -> None:
        """Store all of data under key, or nothing (atomic); replaces what was there."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; how many there were."""
        ...

    async def fetch(self, key: str) -> bytes | None:
        """get() for an event loop."""
        ...

    async def open(self, key: str) -> StoredObject | None:
        """Start reading an object as a stream, or None when there is no such object."""
        ...

    def check(self) -> None:
        """Reach the store once (bucket, credentials): StorageError says what is wrong."""
        ...


def parse_storage_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of s3://bucket[/prefix]; ValueError names what is wrong."""
    if not url.startswith("s3://"):
        raise ValueError("expected s3://bucket[/prefix]")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"{bucket!r} is not an S3 bucket name")
    return bucket, prefix.strip("/")


class S3Store:
    """ObjectStore on any S3-compatible API (AWS, MinIO, Ceph, R2, moto...)."""

    def __init__(self, settings: StorageSettings) -> None:
        bucket, prefix = parse_storage_url(settings.url)
        config: S3Config = {"region": settings.region}
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        if settings.access_key:
            config["access_key_id"] = settings.access_key
            config["secret_access_key"] = settings.secret_key
        # Fail fast: PatientStore does the waiting, with one log line per outage.
        client: ClientConfig = {
            "allow_http": settings.endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=3),
            "timeout": timedelta(seconds=60),
        }
        retry: RetryConfig = {"max_retries": 1, "retry_timeout": timedelta(seconds=5)}
        self.location = f"{settings.url} at {settings.endpoint or 'AWS'}"
        try:
            self._store = _ObstoreS3(
                bucket,
                prefix=prefix or None,
                config=config,
                client_options=client,
                retry_config=retry,
            )
        except (BaseError, ValueError) as error:
            raise StorageError(_one_line(error)) from None

    def put(self, key: str, data: bytes | Path) -> None:
        _guarded(lambda: obstore.put(self._store, key, data))

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(_guarded(lambda: obstore.get(self._store, key).bytes()))
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        try:
            _guarded(lambda: obstore.head(self._store, key))
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        def delete() -> int:
            keys = [meta["path"] for batch in obstore.list(self._store, prefix) for meta in batch]
            if keys:
                obstore.delete(self._store, keys)
            return len(keys)

        return _guarded(delete)

    async def fetch(self, key: str) -> bytes | None:
        stored = await self.open(key)
        if stored is None:
            return None
        return b"".join([chunk async for chunk in stored.chunks])

    async def open(self, key: str) -> StoredObject | None:
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as error:
            raise StorageError(_one_line(error)) from None
        meta = result.meta
        return StoredObject(
            size=meta["size"],
            etag=meta["e_tag"],
            modified=meta["last_modified"].timestamp(),
            chunks=_chunks(result.stream(min_chunk_size=_STREAM_CHUNK)),
        )

    def check(self) -> None:
        # A listing needs the bucket to exist and the credentials to be right, where a
        # missing key answers 404 whether or not the bucket exists.
        _guarded(lambda: obstore.list_with_delimiter(self._store, None))


async def _chunks(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield bytes(chunk)
    except (BaseError, OSError) as error:
        raise StorageError(_one_line(error)) from None


def _guarded(call: Callable[[], T]) -> T:
    """obstore's errors as StorageError; FileNotFoundError (no such object) passes."""
    try:
        return call()
    except FileNotFoundError:
        raise
    except (BaseError, OSError) as error:
        raise StorageError(_one_line(error)) from None


_XML_ERROR = re.compile(r"<Code>([^<]*)</Code>\s*<Message>([^<]*)</Message>", re.S)


def _one_line(error: BaseException) -> str:
    """obstore's messages carry the server's XML and a multi-line debug dump: keep the
    summary and the S3 error code."""
    text = str(error).split("\n\nDebug source", 1)[0]
    coded = _XML_ERROR.search(text)
    summary = text.split("<?xml", 1)[0].strip().rstrip(":")
    if coded is not None:
        summary = f"{summary}: {coded[1]}: {coded[2]}"
    return " ".join(summary.split())[:400]


class PatientStore:
    """An ObjectStore whose blocking calls wait out outages (module docstring). For the
    packager's writer thread; the async calls fail fast, since a listener should get a
    503 rather than wait. One per process: the outage is logged once, not per space."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        first_wait: float = 0.25,
        max_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._sleep = sleep
        self._lock = threading.Lock()
        self._outage_since: float | None = None

    @property
    def location(self) -> str:
        return self._store.location

    def put(self, key: str, data: bytes | Path) -> None:
        self._until_answered(lambda: self._store.put(key, data))

    def get(self, key: str) -> bytes | None:
        return self._until_answered(lambda: self._store.get(key))

    def exists(self, key: str) -> bool:
        return self._until_answered(lambda: self._store.exists(key))

    def delete_prefix(self, prefix: str) -> int:
        # Asked for by a person, who should hear of an outage rather than wait it out.
        return self._store.delete_prefix(prefix)

    async def fetch(self, key: str) -> bytes | None:
        return await self._store.fetch(key)

    async def open(self, key: str) -> StoredObject | None:
        return await self._store.open(key)

    def check(self) -> None:
        self._store.check()

    def _until_answered(self, call: Callable[[], T]) -> T:
        wait = self._first_wait
        while True:
            try:
                result = call()
            except StorageError as error:
                self._note_failure(error)
                self._sleep(wait)
                wait = min(wait * 2, self._max_wait)
                continue
            self._note_success()
            return result

    def _note_failure(self, error: StorageError) -> None:
        with self._lock:
            if self._outage_since is not None:
                return
            self._outage_since = time.monotonic()
        log.warning(
            "object store %s unreachable (%s); recordings wait for it, retrying every %g s at most",
            self.location,
            error,
            self._max_wait,
        )

    def _note_success(self) -> None:
        with self._lock:
            since, self._outage_since = self._outage_since, None
        if since is not None:
            log.warning(
                "object store %s reachable again after %.1f s; recordings catch up",
                self.location,
                time.monotonic() - since,
            )


def open_object_store(settings: StorageSettings | None) -> ObjectStore | None:
    """The store the settings name, or None (recordings on local disk only)."""
    return None if settings is None else S3Store(settings)
