"""Deleting a space's recording wherever it is kept: its directory under the recordings
root and, with object storage, every object under the space's prefix (mirror.object_key).
The control plane asks for it through plane.Recordings when a host deletes a replay."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from majlis.errors import Conflict, Overloaded
from majlis.media.recording.directory import recording_held
from majlis.media.recording.mirror import object_key
from majlis.media.recording.storage import ObjectStore, StorageError

__all__ = ["RecordingRemoval"]


class RecordingRemoval:
    def __init__(self, root: Path, store: ObjectStore | None) -> None:
        self._root = root
        self._store = store

    async def delete(self, space_id: str) -> bool:
        """True if anything was there to delete."""
        return await asyncio.to_thread(self._delete, space_id)

    def _delete(self, space_id: str) -> bool:
        found = False
        folder = self._root / space_id
        if folder.is_dir():
            try:
                # Its packager holds it until the replay is finished and stored: a delete
                # in between would race the files and uploads still to come.
                with recording_held(folder):
                    shutil.rmtree(folder)
            except Conflict:
                raise Conflict(
                    "the recording is still being finished; try again in a few seconds",
                    code="recording_busy",
                ) from None
            found = True
        if self._store is not None:
            try:
                found = self._store.delete_prefix(object_key(space_id, "")) > 0 or found
            except StorageError as error:
                raise Overloaded(
                    f"the recordings' storage is not answering: {error}", 5000
                ) from None
        return found
