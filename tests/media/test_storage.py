"""storage.py against a real S3 API (moto in server mode): the seam, its errors, and
PatientStore waiting out an outage made by a TCP proxy that resets connections."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from majlis.media.recording.storage import (
    PatientStore,
    S3Store,
    StorageError,
    StorageSettings,
    parse_storage_url,
)
from s3_support import TcpProxy


def test_put_get_exists_and_missing_objects(s3_settings: StorageSettings, tmp_path: Path) -> None:
    store = S3Store(s3_settings)
    store.check()
    assert store.get("space/s0.m4s") is None
    assert not store.exists("space/s0.m4s")
    store.put("space/s0.m4s", b"first")
    store.put("space/s0.m4s", b"second")  # replaced whole
    assert store.get("space/s0.m4s") == b"second"
    assert store.exists("space/s0.m4s")
    big = tmp_path / "replay.m4a"
    big.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, from a file
    store.put("space/replay.m4a", big)
    assert store.get("space/replay.m4a") == big.read_bytes()
    # The prefix of storage_url keeps recordings apart from anything else in the bucket.
    other = S3Store(dataclasses.replace(s3_settings, url=s3_settings.url + "-other"))
    assert other.get("space/s0.m4s") is None


async def test_objects_stream_with_their_size(s3_settings: StorageSettings) -> None:
    store = S3Store(s3_settings)
    data = b"x" * 200_000
    store.put("space/s1.m4s", data)
    stored = await store.open("space/s1.m4s")
    assert stored is not None
    assert stored.size == len(data) and stored.etag and stored.modified > 0
    assert b"".join([chunk async for chunk in stored.chunks]) == data
    assert await store.open("space/none.m4s") is None
    assert await store.fetch("space/s1.m4s") == data


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"url": "s3://no-such-bucket-here/x"}, "NoSuchBucket"),
        ({"endpoint": "http://127.0.0.1:1"}, "error sending request"),
    ],
)
def test_a_wrong_bucket_or_endpoint_is_one_line(
    s3_settings: StorageSettings, change: dict[str, str], reason: str
) -> None:
    store = S3Store(dataclasses.replace(s3_settings, **change))
    with pytest.raises(StorageError) as raised:
        store.check()
    message = str(raised.value)
    assert reason in message and "\n" not in message and len(message) <= 400


@pytest.mark.parametrize("url", ["s3://", "s3://UPPER/x", "http://bucket/x", "s3://a/x"])
def test_bad_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_storage_url(url)


def test_patient_store_waits_out_an_outage_and_logs_it_once(
    s3_settings: StorageSettings, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(urlsplit(s3_settings.endpoint).port or 0)
    try:
        patient = PatientStore(
            S3Store(dataclasses.replace(s3_settings, endpoint=proxy.endpoint)), max_wait=0.5
        )
        patient.put("space/a", b"before")
        proxy.down()
        done = threading.Event()

        def put_during_outage() -> None:
            patient.put("space/b", b"during")
            done.set()

        with caplog.at_level(logging.WARNING, logger="majlis.media.recording.storage"):
            threading.Thread(target=put_during_outage, daemon=True).start()
            assert not done.wait(2.0), "a put went through a store that was down"
            proxy.up()
            assert done.wait(5.0), "the put did not go through once the store was back"
        assert patient.get("space/b") == b"during"
        ours = [
            record for record in caplog.records if record.name == "majlis.media.recording.storage"
        ]
        lines = [record.getMessage() for record in ours]
        assert len(lines) == 2, lines  # one when the outage starts, one when it ends
        assert "unreachable" in lines[0] and "reachable again" in lines[1]
        assert all(record.exc_info is None for record in ours)
    finally:
        proxy.close()


def test_patient_store_backs_off_up_to_a_cap(s3_settings: StorageSettings) -> None:
    waits: list[float] = []
    unreachable = S3Store(dataclasses.replace(s3_settings, endpoint="http://127.0.0.1:1"))

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 8:
            raise TimeoutError  # enough: stop the endless wait

    patient = PatientStore(unreachable, first_wait=0.25, max_wait=2.0, sleep=sleep)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        patient.put("space/x", b"x")
    assert waits == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert time.monotonic() - started < 5.0
