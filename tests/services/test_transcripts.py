"""The transcript job runner on a real SQLite store with a fake clock.

The speech side is a scripted `ReplayTranscriber`: what is tested here is the job's life
(queue, claim, retry while the replay is being built, failure, take-over after a worker's
death), not speech to text, which tests/media/captions and tests/e2e/test_transcripts.py
run on the real model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from majlis.clock import FakeClock
from majlis.errors import Conflict, NotFound, Overloaded
from majlis.services.transcripts import TranscriptPolicy, Transcripts
from majlis.store.base import Store
from majlis.store.sqlite import SqliteStore
from majlis.types import Language, Space, SpaceState, TranscriptLine, User, Visibility

LINES = [TranscriptLine(0.5, 2.0, "hello there"), TranscriptLine(3.0, 4.0, "goodbye")]
POLICY = TranscriptPolicy(retry_s=2.0, max_retry_s=8.0, max_attempts=4, stale_s=60.0)


class Scripted:
    """Answers each call with the next outcome: lines, or an exception to raise."""

    def __init__(self, *outcomes: list[TranscriptLine] | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, Language]] = []

    async def transcribe(self, space_id: str, language: Language) -> list[TranscriptLine]:
        self.calls.append((space_id, language))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "majlis.db")
    await s.open()
    await s.create_user(User("host", "host", "Host", 0.0))
    try:
        yield s
    finally:
        await s.close()


async def ended_space(store: Store, clock: FakeClock, *, language: Language = "en") -> Space:
    live = Space(
        "s1",
        "host",
        "A talk",
        "",
        SpaceState.LIVE,
        Visibility.PUBLIC,
        clock.now(),
        started_at=clock.now(),
        language=language,
    )
    await store.create_space(live)
    await store.transition_space("s1", SpaceState.LIVE, SpaceState.ENDED, clock.now())
    return live


async def test_an_ended_space_is_transcribed_once(store: Store) -> None:
    clock = FakeClock()
    speech = Scripted(LINES)
    transcripts = Transcripts(store, clock, speech, POLICY)
    live = await ended_space(store, clock, language="ar")
    await transcripts.space_ended(live)
    state, lines = await transcripts.get("s1")
    assert (state.status, lines) == ("pending", [])

    assert await transcripts.run_once()
    assert speech.calls == [("s1", "ar")]
    state, lines = await transcripts.get("s1")
    assert (state.status, lines) == ("done", LINES)
    assert await transcripts.lines("s1") == LINES
    assert not await transcripts.run_once()  # nothing left to do


async def test_a_replay_not_built_yet_is_tried_again_later_then_given_up(store: Store) -> None:
    clock = FakeClock()
    not_yet = NotFound("the replay is not there (yet)", code="no_replay")
    speech = Scripted(not_yet, Overloaded("origin busy", 1000), not_yet, not_yet)
    transcripts = Transcripts(store, clock, speech, POLICY)
    await transcripts.space_ended(await ended_space(store, clock))

    assert await transcripts.run_once()  # attempt 1: wait 2 s
    clock.advance(1.9)
    assert not await transcripts.run_once()
    clock.advance(0.1)
    assert await transcripts.run_once()  # attempt 2: wait 4 s
    clock.advance(3.9)
    assert not await transcripts.run_once()
    clock.advance(0.1)
    assert await transcripts.run_once()  # attempt 3: wait 8 s (the cap)
    state, _ = await transcripts.get("s1")
    assert state.status == "pending"
    with pytest.raises(Conflict) as refused:
        await transcripts.lines("s1")
    assert refused.value.code == "transcript_not_ready"
    clock.advance(8.0)
    assert await transcripts.run_once()  # attempt 4 of 4: failed
    state, _ = await transcripts.get("s1")
    assert state.status == "failed" and "no replay" in state.error
    assert len(speech.calls) == 4


async def test_a_transcriber_error_fails_the_transcript_with_its_reason(store: Store) -> None:
    clock = FakeClock()
    speech = Scripted(ValueError("the caption model (English-only) cannot transcribe 'ar'"))
    transcripts = Transcripts(store, clock, speech, POLICY)
    await transcripts.space_ended(await ended_space(store, clock))
    assert await transcripts.run_once()
    state, lines = await transcripts.get("s1")
    assert (state.status, lines) == ("failed", [])
    assert "English-only" in state.error
    with pytest.raises(Conflict) as refused:
        await transcripts.lines("s1")
    assert refused.value.code == "transcript_failed"


async def test_a_job_left_running_by_a_dead_worker_is_taken_over(store: Store) -> None:
    clock = FakeClock()
    dead = Transcripts(store, clock, Scripted(), POLICY)
    await dead.space_ended(await ended_space(store, clock))
    # The dead worker claimed the job and never came back.
    assert await store.claim_transcript(clock.now(), clock.now() - POLICY.stale_s) is not None
    speech = Scripted(LINES)
    alive = Transcripts(store, clock, speech, POLICY)
    clock.advance(POLICY.stale_s - 1)
    assert not await alive.run_once()
    clock.advance(1.01)
    assert await alive.run_once()
    state, lines = await alive.get("s1")
    assert (state.status, state.attempts, lines) == ("done", 2, LINES)


async def test_without_a_model_nothing_is_queued_and_the_api_says_why(store: Store) -> None:
    clock = FakeClock()
    transcripts = Transcripts(store, clock, None, POLICY)
    await transcripts.space_ended(await ended_space(store, clock))
    assert await store.get_transcript("s1") is None
    assert not await transcripts.run_once()
    with pytest.raises(Conflict) as refused:
        await transcripts.get("s1")
    assert refused.value.code == "captions_off"
    assert "caption_model" in refused.value.reason
    with pytest.raises(NotFound):
        await transcripts.get("nope")


async def test_a_live_space_and_a_space_never_live(store: Store) -> None:
    clock = FakeClock()
    transcripts = Transcripts(store, clock, Scripted(), POLICY)
    await store.create_space(
        Space("live", "host", "On air", "", SpaceState.LIVE, Visibility.PUBLIC, clock.now())
    )
    with pytest.raises(Conflict) as refused:
        await transcripts.get("live")
    assert refused.value.code == "space_not_ended"
    never = Space("never", "host", "Called off", "", SpaceState.ENDED, Visibility.PUBLIC, 0.0)
    await store.create_space(never)
    await transcripts.space_ended(never)  # never live: no recording, nothing queued
    with pytest.raises(NotFound) as missing:
        await transcripts.get("never")
    assert missing.value.code == "no_transcript"
