"""Transcripts in the store: the job's claim, its outcome, the lines and full-text search,
run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from majlis.store import Store
from majlis.types import SpaceState, TranscriptLine

from .test_store import T0, hosted_space, space, users

LINES = [
    TranscriptLine(1.0, 3.5, "The library opens a new reading room."),
    TranscriptLine(5.0, 7.25, "Bring your questions about the budget.", speaker="u1"),
]


async def test_a_space_keeps_its_language(store: Store) -> None:
    [host] = await users(store, "Host")
    await store.create_space(replace(space("ar", host), language="ar"))
    await store.create_space(space("default", host))
    got = await store.get_space("ar")
    assert got is not None and got.language == "ar"
    got = await store.get_space("default")
    assert got is not None and got.language == "auto"


async def test_a_queued_transcript_is_claimed_once_and_finished(store: Store) -> None:
    await hosted_space(store)
    assert await store.get_transcript("s1") is None
    assert await store.queue_transcript("s1", T0 + 10)
    assert not await store.queue_transcript("s1", T0 + 11)  # one per space
    state = await store.get_transcript("s1")
    assert state is not None and (state.status, state.attempts) == ("pending", 0)

    assert await store.claim_transcript(T0 + 9, stale_before=T0) is None  # not due yet
    job = await store.claim_transcript(T0 + 10, stale_before=T0)
    assert job is not None and (job.space_id, job.attempts) == ("s1", 1)
    assert await store.claim_transcript(T0 + 10, stale_before=T0) is None  # running
    running = await store.get_transcript("s1")
    assert running is not None and running.status == "running"

    assert await store.finish_transcript(job, LINES, T0 + 20)
    done = await store.get_transcript("s1")
    assert done is not None and (done.status, done.error, done.updated_at) == ("done", "", T0 + 20)
    assert await store.list_transcript_lines("s1") == LINES
    assert await store.claim_transcript(T0 + 100, stale_before=T0 + 90) is None


async def test_a_stale_claim_is_taken_over_and_the_old_worker_cannot_write(store: Store) -> None:
    await hosted_space(store)
    await store.queue_transcript("s1", T0)
    old = await store.claim_transcript(T0, stale_before=T0 - 60)
    assert old is not None
    assert await store.touch_transcript(old, T0 + 30)  # a heartbeat keeps it fresh
    assert await store.claim_transcript(T0 + 60, stale_before=T0 + 0) is None
    new = await store.claim_transcript(T0 + 120, stale_before=T0 + 60)
    assert new is not None and new.attempts == 2 and new.claim != old.claim

    assert not await store.finish_transcript(old, LINES, T0 + 121)
    assert not await store.fail_transcript(old, "late", T0 + 121)
    assert not await store.touch_transcript(old, T0 + 121)
    assert await store.list_transcript_lines("s1") == []
    assert await store.fail_transcript(new, "the model broke", T0 + 122)
    failed = await store.get_transcript("s1")
    assert failed is not None and (failed.status, failed.error) == ("failed", "the model broke")
    assert await store.claim_transcript(T0 + 999, stale_before=T0 + 999) is None


async def test_a_deferred_transcript_waits_until_its_time(store: Store) -> None:
    await hosted_space(store)
    await store.queue_transcript("s1", T0)
    job = await store.claim_transcript(T0, stale_before=T0 - 60)
    assert job is not None
    assert await store.defer_transcript(job, T0 + 5, T0 + 1)
    assert await store.claim_transcript(T0 + 4, stale_before=T0 - 60) is None
    again = await store.claim_transcript(T0 + 5, stale_before=T0 - 60)
    assert again is not None and again.attempts == 2


async def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    [host] = await users(store, "Host")
    for i in range(4):
        await store.create_space(space(f"s{i}", host))
        await store.queue_transcript(f"s{i}", T0)
    claims = await asyncio.gather(
        *(store.claim_transcript(T0 + 1, stale_before=T0 - 60) for _ in range(8))
    )
    taken = [job.space_id for job in claims if job is not None]
    assert sorted(taken) == ["s0", "s1", "s2", "s3"]


async def test_a_done_transcript_is_never_claimed_again(store: Store) -> None:
    await hosted_space(store)
    await store.queue_transcript("s1", T0)
    first = await store.claim_transcript(T0, stale_before=T0 - 60)
    assert first is not None
    await store.finish_transcript(first, LINES, T0 + 1)
    # However old its last update, a done row is not stale: only running ones can be.
    assert await store.claim_transcript(T0 + 2, stale_before=T0 + 2) is None
    assert await store.list_transcript_lines("s1") == LINES


async def _search(store: Store, query: str) -> list[str]:
    found = await store.list_spaces(
        state=None, query=query, host_id=None, include_unlisted=False, limit=10, offset=0
    )
    return [s.id for s in found]


async def test_search_finds_a_space_by_a_word_only_spoken_in_it(store: Store) -> None:
    [host] = await users(store, "Host")
    await store.create_space(space("spoken", host, title="Town hall", state=SpaceState.ENDED))
    await store.create_space(space("other", host, title="Another talk", state=SpaceState.ENDED))
    await store.queue_transcript("spoken", T0)
    job = await store.claim_transcript(T0, stale_before=T0 - 60)
    assert job is not None
    await store.finish_transcript(job, LINES, T0 + 1)

    assert await _search(store, "library") == ["spoken"]
    assert await _search(store, "BUDGET") == ["spoken"]  # case-folded
    assert await _search(store, "budget questions") == ["spoken"]  # every word, any order
    assert await _search(store, "budget elephants") == []
    assert await _search(store, "town") == ["spoken"]  # titles still match
    # Whatever FTS5 or tsquery would read as syntax is only text here.
    for odd in ('"', "library OR", "NEAR(library", "*", "budget:*", "a'b", "-library", "()"):
        await _search(store, odd)
    assert await _search(store, "librar") == []  # whole words, not substrings


async def test_every_space_that_said_the_word_is_found(store: Store) -> None:
    host, _ = await hosted_space(store)
    await store.queue_transcript("s1", T0)
    job = await store.claim_transcript(T0, stale_before=T0 - 60)
    assert job is not None
    await store.finish_transcript(job, LINES, T0 + 1)
    await store.create_space(space("s2", host, title="Later"))
    await store.queue_transcript("s2", T0)
    job = await store.claim_transcript(T0, stale_before=T0 - 60)
    assert job is not None
    await store.finish_transcript(job, [TranscriptLine(0.0, 1.0, "library")], T0 + 1)
    assert sorted(await _search(store, "library")) == ["s1", "s2"]
