"""`plane.ReplayTranscriber` for this process: the replay read through the HLS origin (as
`OriginClips` reads clips), transcribed in a thread of its own.

The origin is this server's own or the cluster's proxy, so the replay is found wherever it
lives (this disk, another node, the bucket). The work runs in one daemon thread per job, one
job at a time: decoding, the VAD (onnxruntime) and Whisper (CTranslate2) release the GIL for
most of it, and a daemon thread never holds up the process's exit, which a pool's thread
would do for as long as the job lasts. The models are loaded once, on the first job, in that
job's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from starlette.types import ASGIApp

from majlis.errors import NotFound, Overloaded
from majlis.media.captions.replay import ReplayLine, transcribe_replay
from majlis.media.captions.transcriber import WhisperTranscriber
from majlis.media.captions.vad import SileroModel
from majlis.types import Language, TranscriptLine

__all__ = ["OriginTranscriber"]

_BASE = "http://origin"
_RETRY_MS = 5000
_READ_TIMEOUT_S = 300.0  # a replay of hours is tens of MB, from a bucket perhaps
T = TypeVar("T")


class OriginTranscriber:
    def __init__(self, origin: ASGIApp, model_dir: Path) -> None:
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=origin), base_url=_BASE, timeout=_READ_TIMEOUT_S
        )
        self._model_dir = model_dir
        self._models: tuple[WhisperTranscriber, SileroModel] | None = None
        self._one_at_a_time = asyncio.Lock()
        self._stopping = threading.Event()

    async def aclose(self) -> None:
        self._stopping.set()  # a job in its thread stops within a couple of seconds
        await self._http.aclose()

    async def transcribe(self, space_id: str, language: Language) -> list[TranscriptLine]:
        async with self._one_at_a_time:
            replay = await self._replay(space_id)
            lines = await _in_thread(lambda: self._transcribe(replay, language))
        return [TranscriptLine(line.start, line.end, line.text, line.speaker) for line in lines]

    async def _replay(self, space_id: str) -> bytes:
        answer = await self._http.get(f"/{space_id}/replay.m4a")
        if answer.status_code == 404:
            raise NotFound("the replay is not there (yet)", code="no_replay")
        if answer.status_code != 200:
            raise Overloaded(f"the replay could not be read ({answer.status_code})", _RETRY_MS)
        return answer.content

    def _transcribe(self, replay: bytes, language: Language) -> list[ReplayLine]:
        """In the job's thread."""
        if self._models is None:
            self._models = (WhisperTranscriber(self._model_dir), SileroModel())
        whisper, silero = self._models
        return transcribe_replay(
            replay,
            vad=silero.stream(),
            transcriber=whisper,
            language=None if language == "auto" else language,
            stopped=self._stopping.is_set,
        )


async def _in_thread(work: Callable[[], T]) -> T:
    """`work()` in a daemon thread of its own; its outcome, awaited on this loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.done():  # the waiter may have been cancelled meanwhile
            outcome()

    def hand_back(outcome: Callable[[], None]) -> None:
        # A closed loop (RuntimeError) has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, outcome)

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting coroutine, not lost
            error = exc
            hand_back(lambda: done.set_exception(error))
        else:
            hand_back(lambda: done.set_result(result))

    threading.Thread(target=run, name="replay-transcriber", daemon=True).start()
    return await done
