"""The media node: owns live spaces, each a mixer + speakers' peers + LL-HLS packager.

All media work runs on the node's own MediaLoop (a thread with its own event loop), never
on the loop that serves HTTP. The node hears the control plane only through the bus
(typed commands, `majlis.plane`) and answers speakers' offers through `offer()`, which the
control plane calls after checking the caller may speak (in-process here; over the
internal HTTP API when the node runs on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from majlis.errors import Conflict, NotFound
from majlis.media.captions.live import LiveStats
from majlis.media.captions.transcriber import UnsupportedLanguage
from majlis.media.hls.origin import SpaceRegistry
from majlis.media.hls.packager import HlsPackager, finalize_recording, frames_for_seconds
from majlis.media.mixing.mixer import Mixer
from majlis.media.recording.removal import RecordingRemoval
from majlis.media.recording.storage import (
    ObjectStore,
    PatientStore,
    StorageSettings,
    open_object_store,
)
from majlis.media.rtc.ingest import Ingest
from majlis.media.runtime.captioning import CaptionModels, SpaceCaptions
from majlis.media.runtime.held import HeldMix
from majlis.media.runtime.loop import MediaLoop
from majlis.offers import validate_offer
from majlis.plane import (
    Captions,
    CaptionsSink,
    CloseSpace,
    Disconnect,
    EndSpace,
    HandOver,
    Levels,
    LevelsSink,
    MediaCommand,
    NodeLoad,
    Resume,
    Sample,
    SetCaptions,
    SetMuted,
    StandBy,
    StartSpace,
)
from majlis.types import TranscriptLine

__all__ = ["MediaNode", "NodeSettings"]

log = logging.getLogger(__name__)

# A recording locked by another packager: how long to wait for it to close, and how often
# to look. A handover closes one in well under a second; a lock held longer is a second
# writer, which must not be waited into.
LOCK_PATIENCE, LOCK_POLL = 3.0, 0.1
# A handover waits this long for the speakers to move before it cuts those still here.
MOVE_PATIENCE = 3.0


@dataclass(frozen=True, slots=True)
class NodeSettings:
    recordings_root: Path
    part_seconds: float = 0.25
    segment_seconds: float = 2.0
    bitrate: int = 64000
    storage: StorageSettings | None = None  # recordings also in an object store
    caption_model: Path | None = None  # live captions' model directory; None: no captions
    caption_segment_seconds: float = 1.0  # the captions rendition's segments

    @property
    def part_frames(self) -> int:
        return frames_for_seconds(self.part_seconds)

    @property
    def parts_per_segment(self) -> int:
        return max(2, round(self.segment_seconds / (self.part_frames * 1024 / 48000)))


@dataclass
class _Space:
    space_id: str
    mixer: Mixer
    ingest: Ingest
    mix: HeldMix  # the mixer's output: held until the recording opens here
    recording: asyncio.Lock  # one opening of the recording at a time
    started_at: float  # the space's clock starts here (its recording's and captions')
    captions: SpaceCaptions | None = None  # live captions, once the recording is open here

    def on_mix(self, pcm: npt.NDArray[np.int16], capture_time: float) -> None:
        self.mix.push(pcm, capture_time)
        if self.captions is not None:
            self.captions.push(pcm, capture_time)

    @property
    def packager(self) -> HlsPackager | None:
        return self.mix.packager


class MediaNode:
    def __init__(
        self,
        settings: NodeSettings,
        registry: SpaceRegistry,
        on_levels: LevelsSink | None = None,
        on_captions: CaptionsSink | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.on_levels = on_levels
        self.on_captions = on_captions
        model = settings.caption_model
        self._caption_models = None if model is None else CaptionModels(model)
        # The latest captions settings per space (the host's switch, the language), from
        # a SetCaptions or a StartSpace; a space without any has captions on, its
        # language detected.
        self._caption_settings: dict[str, Captions] = {}
        self._loop = MediaLoop()
        self._spaces: dict[str, _Space] = {}
        self._starting: dict[str, asyncio.Future[None]] = {}
        store = open_object_store(settings.storage)
        # One for the node, so that an outage is logged once, not once per space.
        self._store: ObjectStore | None = None if store is None else PatientStore(store)

    # lifecycle (any thread but the media loop) ------------------------------------------
    async def start(self, resume: Resume | None = None) -> None:
        """Start the media loop, then `resume` (the caller restarts its live spaces): the
        same contract as MediaProcess.start, which runs it after every worker respawn."""
        self._loop.start()
        if resume is not None:
            await resume()

    async def stop(self) -> None:
        """Shut down without ending spaces: recordings are flushed and resume next start."""
        for space_id in list(self._spaces):
            await self._run(self._close_space(space_id, end=False))
        self._loop.stop()

    # control (any loop) ------------------------------------------------------------------
    async def start_space(self, space_id: str, started_at: float) -> None:
        await self._run(self._start_space(space_id, started_at))

    async def end_space(self, space_id: str) -> None:
        await self._run(self._close_space(space_id, end=True))

    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        answer: str = await self._run(self._offer(space_id, user_id, sdp, muted, started_at))
        return answer

    async def set_muted(self, space_id: str, user_id: str, muted: bool) -> None:
        space = self._spaces.get(space_id)
        if space is not None:
            space.mixer.set_muted(user_id, muted)

    async def disconnect(self, space_id: str, user_id: str) -> None:
        await self._run(self._disconnect(space_id, user_id))

    async def metrics(self) -> list[Sample]:
        return self.samples()

    async def load(self) -> NodeLoad:
        return self.measure_load()

    async def playout_delays(self, space_id: str) -> dict[str, float]:
        return self.measure_delays(space_id)

    def measure_delays(self, space_id: str) -> dict[str, float]:
        """Safe from any thread."""
        space = self._spaces.get(space_id)
        return {} if space is None else space.mixer.playout_delays()

    def measure_load(self) -> NodeLoad:
        """Spaces recorded here and the worst recent lateness; safe from any thread."""
        spaces = list(self._spaces.values())
        late = max((space.mixer.recent_lateness() for space in spaces), default=0.0)
        recorded = sum(1 for space in spaces if space.packager is not None)
        return NodeLoad(recorded, late * 1e3)

    def samples(self) -> list[Sample]:
        """(name, labels, value) samples for /metrics; safe from any thread."""
        load = self.measure_load()
        samples: list[Sample] = [
            ("majlis_media_spaces", {}, float(load.spaces)),
            ("majlis_media_late_ms", {}, load.late_ms),
            # Taken over from a draining node, not recorded here yet.
            ("majlis_media_standby_spaces", {}, float(len(self._spaces) - load.spaces)),
        ]
        for space_id, space in list(self._spaces.items()):
            labels = {"space": space_id}
            ticks = space.mixer.stats()
            samples += [
                ("majlis_mixer_ticks_total", labels, float(ticks.ticks)),
                ("majlis_mixer_tick_late_p50_ms", labels, ticks.late_p50_ms),
                ("majlis_mixer_tick_late_p99_ms", labels, ticks.late_p99_ms),
                ("majlis_mixer_tick_late_max_ms", labels, ticks.late_max_ms),
                ("majlis_mixer_tick_cost_p99_ms", labels, ticks.cost_p99_ms),
                ("majlis_mixer_ticks_skipped_total", labels, float(ticks.skipped)),
                ("majlis_mixer_speakers", labels, float(len(space.ingest.speakers()))),
                # Packets of the listener mix encoded once for every muted speaker.
                (
                    "majlis_mixer_shared_encodes_total",
                    labels,
                    float(space.mixer.shared_mix.encoded),
                ),
            ]
            if space.packager is not None:
                samples += _packager_samples(space.packager, labels)
            captions = space.captions
            if captions is not None:
                samples += _caption_samples(captions.stats(), labels)
        return samples

    async def handle(self, command: MediaCommand) -> None:
        """One command from the control plane."""
        match command:
            case StartSpace(space_id, started_at, captions):
                if captions is None:
                    await self.start_space(space_id, started_at)
                else:
                    await self._run(self._start_captioned(space_id, started_at, captions))
            case EndSpace(space_id, keep):
                await self._run(self._close_space(space_id, end=True, keep=keep))
            case CloseSpace(space_id):
                await self._run(self._close_space(space_id, end=False))
            case HandOver(space_id):
                await self._run(self._hand_over(space_id))
            case StandBy(space_id, started_at, delays):
                await self._run(self._stand_by(space_id, started_at, delays))
            case SetMuted(space_id, user_id, muted):
                await self.set_muted(space_id, user_id, muted)
            case SetCaptions(space_id):
                await self._run(self._set_captions(space_id, command.captions))
            case Disconnect(space_id, user_id):
                await self.disconnect(space_id, user_id)

    # on the media loop -------------------------------------------------------------------
    async def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return await self._loop.run(coro)

    async def _start_space(self, space_id: str, started_at: float, *, record: bool = True) -> None:
        """Idempotent; concurrent callers (a bus command and an offer) share one start.
        Without `record` the space runs without its recording (StandBy); a later start
        with it opens the recording and hands it what was mixed meanwhile."""
        space = self._spaces.get(space_id)
        if space is None:
            space = await self._create_once(space_id, started_at, record)
        if record and space.packager is None:
            try:
                await self._record(space, started_at)
            except Exception:
                # Not left mixing what nobody records: its speakers offer again, and the
                # space starts afresh.
                await self._close_space(space_id, end=False)
                raise

    async def _stand_by(self, space_id: str, started_at: float, delays: dict[str, float]) -> None:
        await self._start_space(space_id, started_at, record=False)
        space = self._spaces.get(space_id)
        if space is not None:  # before the speakers' offers, which the StandBy precedes
            space.mixer.expect_delays(delays)

    async def _start_captioned(self, space_id: str, started_at: float, captions: Captions) -> None:
        """A start that carries the captions settings. A space not recorded here yet
        learns them before its recording opens, so its captions start as the host chose
        (never on for a moment, nor in the wrong language); one already recorded (an
        offer started it) has them applied as a SetCaptions would."""
        space = self._spaces.get(space_id)
        if space is not None and space.packager is not None:
            await self._set_captions(space_id, captions)
            return
        self._caption_settings[space_id] = captions
        await self._start_space(space_id, started_at)

    async def _create_once(self, space_id: str, started_at: float, record: bool) -> _Space:
        pending = self._starting.get(space_id)
        if pending is not None:
            await asyncio.shield(pending)
        else:
            starting = asyncio.get_running_loop().create_future()
            self._starting[space_id] = starting
            try:
                await self._open_space(space_id, started_at, record)
                starting.set_result(None)
            except BaseException as exc:
                starting.set_exception(exc)
                starting.exception()  # mark retrieved: the caller re-raises it
                raise
            finally:
                del self._starting[space_id]
        space = self._spaces.get(space_id)
        if space is None:
            raise NotFound(f"space {space_id} closed as it started")
        return space

    async def _open_space(self, space_id: str, started_at: float, record: bool) -> None:
        # A recording that cannot open (it has ended) fails the start before any peer.
        packager = await self._open_packager(space_id, started_at) if record else None
        mix = HeldMix()
        if packager is not None:
            mix.attach(packager)
        mixer = Mixer()
        ingest = Ingest(space_id, mixer)
        space = _Space(space_id, mixer, ingest, mix, asyncio.Lock(), started_at)
        mixer.on_mix = space.on_mix
        mixer.on_levels = self._levels_sink(space)
        self._spaces[space_id] = space
        mixer.start()
        if packager is not None:
            self._serve_listeners(space, packager)
            await self._start_captions(space, packager, started_at)
        log.info("space %s: media started%s", space_id, "" if record else " on standby")

    async def _record(self, space: _Space, started_at: float) -> None:
        """Open the recording of a space on standby: the node that handed it over has
        closed it by now (or closes it within LOCK_PATIENCE on a shared disk)."""
        async with space.recording:
            if space.packager is not None or self._spaces.get(space.space_id) is not space:
                return
            packager = await self._open_packager(space.space_id, started_at)
            if self._spaces.get(space.space_id) is not space:
                await asyncio.to_thread(packager.close)  # closed while the recording opened
                return
            space.mix.attach(packager)
            self._serve_listeners(space, packager)
            log.info("space %s: recording taken over", space.space_id)
        await self._start_captions(space, packager, started_at)

    def _serve_listeners(self, space: _Space, packager: HlsPackager) -> None:
        self.registry.register(space.space_id, packager.directory, packager.feed)

    async def _start_captions(
        self, space: _Space, packager: HlsPackager, started_at: float
    ) -> None:
        """Live captions beside the recording, when the node has a caption model. A model
        that fails to load leaves the space without captions, never without audio."""
        settings = self._caption_settings.get(space.space_id)
        if self._caption_models is None or space.captions is not None:
            return
        if settings is not None and not settings.on:
            return
        try:
            models = await self._caption_models.loaded()
        except Exception:
            log.exception("space %s: the caption model did not load; no captions", space.space_id)
            return
        if self._spaces.get(space.space_id) is not space:
            return  # closed meanwhile
        language = "auto" if settings is None else settings.language
        try:
            space.captions = SpaceCaptions(
                models,
                packager.directory,
                space_started_at=started_at,
                segment_seconds=self.settings.caption_segment_seconds,
                language=language,
                on_lines=self._lines_sink(space.space_id),
            )
        except UnsupportedLanguage as refused:
            log.warning("space %s: no live captions: %s", space.space_id, refused)

    async def _set_captions(self, space_id: str, settings: Captions) -> None:
        """The control plane's settings. Off: nothing more of the space is transcribed,
        and its rendition ends (EXT-X-ENDLIST: players stop asking); on again: a new
        rendition continues the numbering from the space's clock. A language applies
        from the next transcription on."""
        self._caption_settings[space_id] = settings
        space = self._spaces.get(space_id)
        if space is None:
            return
        captions = space.captions
        if captions is not None and settings.on:
            try:
                captions.set_language(settings.language)
                return
            except UnsupportedLanguage as refused:
                log.warning("space %s: no live captions: %s", space_id, refused)
        if captions is not None:
            space.captions = None
            await asyncio.to_thread(captions.close, end=True)
        elif settings.on and space.packager is not None:
            await self._start_captions(space, space.packager, space.started_at)

    async def _close_space(self, space_id: str, *, end: bool, keep: bool = True) -> None:
        """`end`: for good (else the recording resumes on the next start); `keep` False:
        the host turned recording off, so what was recorded is deleted, not finished."""
        space = self._spaces.pop(space_id, None)
        if space is None:
            if end:
                await (self._end_orphan(space_id) if keep else self._discard(space_id))
            return
        await space.ingest.close()
        await space.mixer.stop()
        captions, space.captions = space.captions, None
        if captions is not None:
            await asyncio.to_thread(captions.close, end=end)
        if end:
            self._caption_settings.pop(space_id, None)
        async with space.recording:
            packager = space.packager
        if packager is None:
            # On standby: what it mixed was never its to record.
            log.info("space %s: standby closed", space_id)
            return
        if end and not keep:
            # Closed first: its writer thread (and its uploads) stop before the delete.
            await asyncio.to_thread(packager.close)
            self.registry.unregister(space_id)
            await self._discard(space_id)
            log.info("space %s: media ended; not recorded, so its files are deleted", space_id)
            return
        await asyncio.to_thread(packager.end if end else packager.close)
        if end:
            # Served from disk from now on: the replay.
            self.registry.unregister(space_id)
        log.info("space %s: media %s", space_id, "ended" if end else "closed")

    async def _discard(self, space_id: str) -> None:
        """Delete a space's recording, on disk and in the store (recording off)."""
        removal = RecordingRemoval(self.settings.recordings_root, self._store)
        await removal.delete(space_id)

    async def _hand_over(self, space_id: str) -> None:
        """Ask the speakers to move, give them MOVE_PATIENCE to do it, then close."""
        space = self._spaces.get(space_id)
        if space is not None:
            asked = await space.ingest.hand_over(MOVE_PATIENCE)
            log.info("space %s: %d speakers asked to move", space_id, asked)
        await self._close_space(space_id, end=False)

    async def _end_orphan(self, space_id: str) -> None:
        """A space ended while no node ran it: close its recording if one exists."""
        directory = self.settings.recordings_root / space_id
        if self._store is None and not (directory / "index.m3u8").exists():
            return
        # NotFound: no recording here nor in the store; Conflict: a packager writes it.
        with contextlib.suppress(Conflict, NotFound):
            await asyncio.to_thread(finalize_recording, directory, self._store)

    async def _open_packager(self, space_id: str, started_at: float) -> HlsPackager:
        """The space's packager. Its recording may still be locked for a moment by the
        node (or worker) it comes from, closing it; wait that out, not longer."""
        settings = self.settings
        directory = settings.recordings_root / space_id
        waited = 0.0
        while True:
            try:
                # Opening the recording may read and fsync files: keep it off the loop.
                return await asyncio.to_thread(
                    HlsPackager,
                    directory,
                    space_started_at=started_at,
                    part_frames=settings.part_frames,
                    parts_per_segment=settings.parts_per_segment,
                    bitrate=settings.bitrate,
                    store=self._store,
                )
            except Conflict:
                if waited >= LOCK_PATIENCE:
                    raise
            await asyncio.sleep(LOCK_POLL)
            waited += LOCK_POLL

    async def _offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        validate_offer(sdp)
        if space_id not in self._spaces:
            await self._start_space(space_id, started_at)
        space = self._spaces.get(space_id)
        if space is None:
            raise NotFound(f"space {space_id} is not running here")
        space.mixer.set_muted(user_id, muted)
        return await space.ingest.accept_offer(user_id, sdp)

    async def _disconnect(self, space_id: str, user_id: str) -> None:
        space = self._spaces.get(space_id)
        if space is None:
            return
        await space.ingest.close_speaker(user_id)
        space.mixer.forget(user_id)

    def _levels_sink(self, space: _Space) -> Callable[[Levels], None]:
        def publish(levels: Levels) -> None:
            if space.captions is not None:
                space.captions.levels(levels)  # who said each line
            if self.on_levels is not None:
                self.on_levels(space.space_id, levels)

        return publish

    def _lines_sink(self, space_id: str) -> Callable[[list[TranscriptLine]], None]:
        def publish(lines: list[TranscriptLine]) -> None:
            if self.on_captions is not None:
                self.on_captions(space_id, lines)

        return publish


def _caption_samples(stats: LiveStats, labels: dict[str, str]) -> list[Sample]:
    return [
        # Frames of the mix the captioner had no room for: it fell more than its queue
        # (10 s) behind, so some speech was not captioned.
        ("majlis_captions_dropped_frames_total", labels, float(stats.dropped)),
        ("majlis_captions_transcriptions_total", labels, float(stats.transcriptions)),
        ("majlis_captions_whisper_seconds_total", labels, stats.transcribe_seconds),
        ("majlis_captions_failed", labels, 1.0 if stats.failed else 0.0),
    ]


def _packager_samples(packager: HlsPackager, labels: dict[str, str]) -> list[Sample]:
    stats = packager.stats()
    return [
        ("majlis_packager_backlog_frames", labels, float(stats.backlog)),
        ("majlis_packager_segments_total", labels, float(stats.segments_written)),
        ("majlis_packager_overlap_dropped_total", labels, float(stats.overlap_dropped)),
        ("majlis_packager_silenced_total", labels, float(stats.frames_silenced)),
        ("majlis_packager_failed", labels, 1.0 if stats.failed else 0.0),
    ]
