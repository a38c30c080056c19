"""One recording's copy in the object store: `{space}/{file name}`, as on disk, except the
journal.

S3 has no append, and rewriting the whole journal for every segment would upload a
3-hour recording's index (~600 KB) every 2 s. So the journal is cut into chunks of
JOURNAL_CHUNK lines, `{space}/journal/{n}.jsonl` holding lines n*JOURNAL_CHUNK onwards:
a new segment rewrites only the last chunk (at most ~12 KB), and a reader takes chunks
0, 1, 2... until one is missing, with no listing. This is sound because a PUT replaces an
object whole (a reader sees the old chunk or the new one, never half), S3 reads are
strongly consistent after a write, chunk n+1 is first written only once chunk n is full
(writes go one at a time, each waiting for the store), and one node writes a recording at
a time (the space's lease).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from majlis.media.recording.storage import ObjectStore

__all__ = ["JOURNAL_CHUNK", "RecordingMirror", "object_key"]

JOURNAL_CHUNK = 100


def object_key(space_id: str, name: str) -> str:
    """A recording's file in the store."""
    return f"{space_id}/{name}"


class RecordingMirror:
    """Blocking access to one recording's objects: give it a PatientStore (the node does)
    so that an outage waits instead of failing the recording."""

    def __init__(self, store: ObjectStore, space_id: str) -> None:
        self._store = store
        self._space = space_id

    def put(self, name: str, data: bytes | Path) -> None:
        self._store.put(self._key(name), data)

    def get(self, name: str) -> bytes | None:
        return self._store.get(self._key(name))

    def exists(self, name: str) -> bool:
        return self._store.exists(self._key(name))

    def store_journal(self, lines: Sequence[bytes], since: int) -> None:
        """Store every chunk that holds one of lines[since:] (lines: the whole journal)."""
        for chunk in range(since // JOURNAL_CHUNK, _chunks_for(len(lines))):
            start = chunk * JOURNAL_CHUNK
            self.put(_chunk_name(chunk), b"".join(lines[start : start + JOURNAL_CHUNK]))

    def load_journal(self) -> bytes:
        """The stored journal, chunks joined (b"" when none was stored)."""
        parts: list[bytes] = []
        chunk = 0
        while (data := self.get(_chunk_name(chunk))) is not None:
            parts.append(data)
            if data.count(b"\n") < JOURNAL_CHUNK:
                break
            chunk += 1
        return b"".join(parts)

    def _key(self, name: str) -> str:
        return object_key(self._space, name)


def _chunks_for(lines: int) -> int:
    return (lines + JOURNAL_CHUNK - 1) // JOURNAL_CHUNK


def _chunk_name(chunk: int) -> str:
    return f"journal/{chunk}.jsonl"
