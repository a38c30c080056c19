"""Deleting a space's recording (a host deleting a replay) from the local disk and from a
real S3 API (moto in server mode): that space's files and objects go, no other's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from majlis.errors import Conflict
from majlis.media.recording.directory import recording_held
from majlis.media.recording.removal import RecordingRemoval
from majlis.media.recording.storage import S3Store, StorageSettings


def test_a_recording_goes_from_disk_and_bucket_and_no_other(
    s3_settings: StorageSettings, tmp_path: Path
) -> None:
    store = S3Store(s3_settings)
    for space in ("sp1", "sp10", "sp2"):
        (tmp_path / space).mkdir()
        (tmp_path / space / "s0.m4s").write_bytes(b"segment")
        for name in ("init.mp4", "s0.m4s", "journal/0"):
            store.put(f"{space}/{name}", b"x")
    removal = RecordingRemoval(tmp_path, store)

    assert asyncio.run(removal.delete("sp1")) is True
    assert asyncio.run(removal.delete("sp1")) is False  # nothing left to delete
    assert not (tmp_path / "sp1").exists()
    assert not store.exists("sp1/init.mp4") and not store.exists("sp1/journal/0")
    # A space whose id starts the same is another space.
    assert (tmp_path / "sp10").is_dir() and store.exists("sp10/s0.m4s")
    assert store.exists("sp2/journal/0")


def test_a_recording_its_packager_still_holds_is_not_deleted(tmp_path: Path) -> None:
    """A host deleting the replay the moment the space ends: the packager is still
    finishing it (its flock), so the delete is refused, not raced."""
    folder = tmp_path / "sp1"
    folder.mkdir()
    (folder / "s0.m4s").write_bytes(b"segment")
    removal = RecordingRemoval(tmp_path, None)
    with recording_held(folder):
        with pytest.raises(Conflict) as refused:
            asyncio.run(removal.delete("sp1"))
        assert refused.value.code == "recording_busy"
        assert (folder / "s0.m4s").exists()
    assert asyncio.run(removal.delete("sp1")) is True
    assert not folder.exists()
