"""Replay transcripts: queued when a space ends, made by a job runner, served and searched.

The job lives in the store, not in a worker: any worker's runner claims it atomically (two
workers never do the same one), notes every `heartbeat_s` that it is still at it, and a job
whose claim has gone quiet for `stale_s` (its worker died) is claimed again by another. The
speech itself is `plane.ReplayTranscriber`'s (the media side's) work.

The replay is built by the media node after the space ends, so at first it is not there:
the job goes back to pending and is tried again later, waiting longer each time.

Without a caption model there is no transcriber: nothing is queued, no runner runs, and
asking for a transcript is a 409 that names the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from majlis.clock import Clock
from majlis.errors import Conflict, MajlisError, NotFound
from majlis.plane import ReplayTranscriber
from majlis.store.base import Store
from majlis.types import Space, SpaceState, TranscriptJob, TranscriptLine, TranscriptState

__all__ = ["CAPTIONS_OFF", "TranscriptPolicy", "Transcripts"]

log = logging.getLogger(__name__)

CAPTIONS_OFF = "this server has no caption model (caption_model)"
_MAX_ERROR = 500  # characters of a failure's message kept for the API


@dataclass(frozen=True, slots=True)
class TranscriptPolicy:
    """Seconds."""

    poll_s: float = 2.0  # how often an idle runner looks for a job
    heartbeat_s: float = 20.0
    stale_s: float = 120.0  # six heartbeats missed: the worker is gone
    retry_s: float = 2.0  # the first wait for a replay that is not built yet; doubles
    max_retry_s: float = 30.0
    # Waiting for a replay gives up after this many attempts (about 10 minutes with the
    # defaults), longer than a media node takes to finish the longest recording.
    max_attempts: int = 25

    def __post_init__(self) -> None:
        if min(self.poll_s, self.heartbeat_s, self.retry_s, self.max_retry_s) <= 0:
            raise ValueError("every interval must be positive")
        if self.stale_s <= 2 * self.heartbeat_s:
            raise ValueError("stale_s must leave room for a missed heartbeat or two")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


class Transcripts:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        transcriber: ReplayTranscriber | None,
        policy: TranscriptPolicy | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._transcriber = transcriber
        self._policy = policy or TranscriptPolicy()

    @property
    def enabled(self) -> bool:
        return self._transcriber is not None

    # the control plane ----------------------------------------------------------------------

    async def space_ended(self, space: Space) -> None:
        """Queue the transcript of a space that has just ended, if it was ever live (a
        scheduled space that is called off has no recording) and was recorded."""
        if self.enabled and space.started_at is not None and space.recording:
            await self._store.queue_transcript(space.id, self._clock.now())

    async def get(self, space_id: str) -> tuple[TranscriptState, list[TranscriptLine]]:
        """The transcript's state and, once it is done, its lines."""
        space = await self._store.get_space(space_id)
        if space is None:
            raise NotFound("no such space", code="space_not_found")
        if not self.enabled:
            raise Conflict(CAPTIONS_OFF, code="captions_off")
        if space.state is not SpaceState.ENDED:
            raise Conflict(
                f"this space is {space.state}: its transcript is made from the replay, "
                "once the space has ended",
                code="space_not_ended",
            )
        state = await self._store.get_transcript(space_id)
        if state is None:
            raise NotFound(
                "this space has no transcript (it ended before captions were on, or was "
                "never live)",
                code="no_transcript",
            )
        lines = await self._store.list_transcript_lines(space_id) if state.status == "done" else []
        return state, lines

    async def lines(self, space_id: str) -> list[TranscriptLine]:
        """The lines of a finished transcript; 409 while it is still being made or failed."""
        state, lines = await self.get(space_id)
        if state.status == "failed":
            raise Conflict(f"the transcript failed: {state.error}", code="transcript_failed")
        if state.status != "done":
            raise Conflict(
                f"the transcript is {state.status}; try again shortly",
                code="transcript_not_ready",
            )
        return lines

    # the job runner -----------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and do jobs until cancelled; idle, look again every poll_s."""
        while True:
            try:
                worked = await self.run_once()
            except Exception:  # the store unreachable a moment: keep the runner alive
                log.exception("transcript runner")
                worked = False
            if not worked:
                await asyncio.sleep(self._policy.poll_s)

    async def run_once(self) -> bool:
        """Do one job if there is one due; False when there was none."""
        if self._transcriber is None:
            return False
        now = self._clock.now()
        job = await self._store.claim_transcript(now, now - self._policy.stale_s)
        if job is None:
            return False
        space = await self._store.get_space(job.space_id)
        if space is None:  # deleted meanwhile; its row went with it
            return True
        beating = asyncio.create_task(self._heartbeat(job))
        try:
            lines = await self._transcriber.transcribe(space.id, space.language)
        except NotFound:
            await self._not_yet(job)
        except MajlisError as error:  # the replay could not be read: a passing fault
            log.warning("transcript of %s: %s", space.id, error.reason)
            await self._not_yet(job)
        except Exception as error:
            log.warning("transcript of %s failed: %s", space.id, error)
            reason = (str(error) or type(error).__name__)[:_MAX_ERROR]
            await self._store.fail_transcript(job, reason, self._clock.now())
        else:
            if not await self._store.finish_transcript(job, lines, self._clock.now()):
                log.warning("transcript of %s was taken over by another worker", space.id)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        return True

    async def _not_yet(self, job: TranscriptJob) -> None:
        now, p = self._clock.now(), self._policy
        if job.attempts >= p.max_attempts:
            await self._store.fail_transcript(
                job, f"no replay after {job.attempts} attempts: was this space recorded?", now
            )
            return
        wait = min(p.retry_s * 2 ** (job.attempts - 1), p.max_retry_s)
        await self._store.defer_transcript(job, now + wait, now)

    async def _heartbeat(self, job: TranscriptJob) -> None:
        while True:
            await asyncio.sleep(self._policy.heartbeat_s)
            try:
                if not await self._store.touch_transcript(job, self._clock.now()):
                    return  # taken over: the outcome will be refused anyway
            except Exception:  # one missed beat is not fatal; stale_s allows several
                log.exception("transcript heartbeat of %s", job.space_id)
