"""The mixer: every 20 ms, one frame from each speaker's jitter buffer becomes the listener mix
and one mix-minus per speaker (everyone unmuted except themself).

It runs on a MediaLoop (media/runtime/loop.py): its own thread with its own asyncio loop, never the
loop serving HTTP. Speakers' aiortc peers live on that loop too, so their tracks (the inputs,
read by one reader task per speaker) and the MixMinusTracks (read by aiortc's senders) never
cross threads.

Everything on one tick is a handful of numpy operations on a (speakers × 960) float32 matrix.
int16 inputs summed in float32 stay exact integers (13 × 32768 ≪ 2²⁴), so a mix-minus is
exactly "total minus own signal" and carries none of the speaker's own audio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Hashable

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from majlis.clock import Clock, SystemClock
from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS
from majlis.media.formats.convert import MonoConverter, Pcm, Reframer
from majlis.media.formats.opus import PACKET_TICKS, OpusEncoder
from majlis.media.mixing.jitter import JitterBuffer, JitterConfig, JitterStats
from majlis.media.mixing.levels import Speaking
from majlis.media.mixing.limiter import Limiter
from majlis.media.mixing.mixminus import MixMinusTrack
from majlis.media.mixing.shared_mix import SHARE_AFTER_TICKS, SharedMix
from majlis.media.mixing.tickstats import Recent, TickStats
from majlis.plane import Levels

__all__ = ["LevelsSink", "MixSink", "Mixer", "MixerInput"]

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float32]

MixSink = Callable[[Pcm, float], None]
LevelsSink = Callable[[Levels], None]

# "Lately": the last 10 s of ticks. The 90th percentile, not the 99th: one tick in ten
# late is a node that is behind; one in a hundred is a busy moment on a shared machine.
RECENT_TICKS = 500
RECENT_QUANTILE = 90


class MixerInput:
    """One speaker's way into the mixer: 20 ms frames land in their jitter buffer.

    Fed either by a task reading a track (`Mixer.add_input`) or directly by whoever
    decodes the speaker's packets (`Mixer.add_feed`). Media loop only.
    """

    def __init__(
        self,
        speaker_id: str,
        buffer: JitterBuffer,
        monotonic: Callable[[], float],
        track: MediaStreamTrack | None = None,
    ) -> None:
        self.speaker_id = speaker_id
        self.buffer = buffer
        self.track = track
        self.task: asyncio.Task[None] | None = None
        self.errors = 0
        self._monotonic = monotonic
        self._converter = MonoConverter()
        self._reframer = Reframer()

    def push_samples(self, pts: int | None, samples: Pcm) -> None:
        """Mono int16 samples whose first one sits at `pts` (48 kHz units) on the speaker's
        timeline; any length (Opus packets of 10 to 60 ms are regrouped into 20 ms)."""
        arrival = self._monotonic()
        for frame_pts, pcm in self._reframer.push(pts, samples):
            self.buffer.push(frame_pts, pcm, arrival)

    def restart(self) -> None:
        """The next samples start a new stretch: nothing pushed before them is waited for."""
        self.buffer.restart()
        self._reframer = Reframer()

    def push_frame(self, frame: av.AudioFrame) -> None:
        try:
            chunks = self._converter.convert(frame)
        except (ValueError, av.FFmpegError):
            self.count_error("cannot convert a frame")
            return
        for pts, samples in chunks:
            self.push_samples(pts, samples)

    def count_error(self, what: str) -> None:
        # One undecodable frame is a loss, not a reason to drop the speaker.
        if self.errors % 500 == 0:
            log.warning("speaker %s: %s", self.speaker_id, what, exc_info=True)
        self.errors += 1


class Mixer:
    """One space's mixer. Construct anywhere; everything else runs on the media loop, except
    set_muted(), is_muted() and stats(), which are safe from any thread.

    on_mix(pcm_int16_mono_960, capture_time_wallclock) gets the listener mix every tick and
    on_levels({speaker_id: (level_dbfs, speaking)}) a few times a second; both are called on
    the media loop and must not block it. Levels are RMS relative to full scale (a full-scale
    sine reads -3 dBFS); a muted speaker reads (SILENCE_DB, False).
    """

    # A clock that fell behind runs its missed ticks back to back, up to this far behind;
    # beyond it (the host stalled us) they are skipped, counted in stats().skipped, and the
    # capture times handed to on_mix jump by the skipped ticks.
    MAX_CATCH_UP = 0.200

    def __init__(
        self,
        *,
        on_mix: MixSink | None = None,
        on_levels: LevelsSink | None = None,
        levels_interval: float = 0.2,
        jitter: JitterConfig | None = None,
        limiter: Limiter | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_mix = on_mix
        self.on_levels = on_levels
        self.limiter = limiter or Limiter()
        self._jitter_config = jitter or JitterConfig()
        # Speakers' first buffer depths, for a space taken over from another node.
        self._expected_delays: dict[str, float] = {}
        self._levels_every = max(1, round(levels_interval / FRAME_SECONDS))
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._inputs: dict[str, MixerInput] = {}
        self._mix_minus: dict[str, MixMinusTrack] = {}
        # Replaced as a whole on every change, so other threads can flip it safely.
        self._muted: dict[str, bool] = {}
        self._speaking: dict[str, Speaking] = {}
        self._task: asyncio.Task[None] | None = None
        self._late = Recent()
        self._cost = Recent()
        self._skipped = 0
        self._sink_errors = 0
        self._tick_index = 0
        # The listener mix encoded once for every muted speaker (media/mixing/shared_mix.py).
        self.shared_mix = SharedMix()
        self._muted_ticks: dict[str, int] = {}

    # --- lifecycle (media loop) -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mixer-clock")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for speaker_id in list(self._inputs):
            self.remove_input(speaker_id)
        for speaker_id in list(self._mix_minus):
            self.release_mix_minus(speaker_id)

    # --- speakers (media loop) --------------------------------------------------------------

    def add_input(self, speaker_id: str, track: MediaStreamTrack) -> MixerInput:
        """Start reading `track` into the speaker's jitter buffer (replacing an older input)."""
        entry = self.add_feed(speaker_id)
        entry.track = track
        entry.task = asyncio.get_running_loop().create_task(
            self._read(entry), name=f"mixer-input-{speaker_id}"
        )
        return entry

    def add_feed(self, speaker_id: str) -> MixerInput:
        """An input the caller pushes samples into (replacing an older input)."""
        self.remove_input(speaker_id)
        config = self._jitter_config
        expected = self._expected_delays.pop(speaker_id, None)
        if expected is not None:
            depth = min(config.max_delay, max(config.min_delay, expected))
            config = dataclasses.replace(config, initial_delay=depth)
        entry = MixerInput(speaker_id, JitterBuffer(config), self._monotonic)
        self._inputs[speaker_id] = entry
        return entry

    def expect_delays(self, delays: dict[str, float]) -> None:
        """The next input of each of these speakers starts its buffer this deep (seconds,
        within the jitter config's bounds) instead of at the usual initial delay."""
        self._expected_delays.update(delays)

    def playout_delays(self) -> dict[str, float]:
        """How far behind each speaker's earliest arrivals it is played: its buffer's
        virtual delay at the last tick, or its target before playout has started. Safe
        from any thread."""
        delays = {}
        for speaker_id, entry in list(self._inputs.items()):
            played = entry.buffer.playout_delay
            delays[speaker_id] = entry.buffer.target_delay if played is None else played
        return delays

    def remove_input(self, speaker_id: str, entry: MixerInput | None = None) -> bool:
        """Stop reading and stop the track at once; with `entry`, only if it is still the one
        in use (a reconnected speaker's new input is left alone)."""
        current = self._inputs.get(speaker_id)
        if current is None or (entry is not None and current is not entry):
            return False
        del self._inputs[speaker_id]
        if current.task is not None:
            current.task.cancel()
        if current.track is not None:
            current.track.stop()
        return True

    def has_input(self, speaker_id: str) -> bool:
        return speaker_id in self._inputs

    def input_stats(self, speaker_id: str) -> JitterStats | None:
        entry = self._inputs.get(speaker_id)
        return entry.buffer.stats if entry is not None else None

    def mix_minus_track(self, speaker_id: str, *, encoded: bool = False) -> MixMinusTrack:
        """A new track carrying the mix without `speaker_id`; replaces (stops) an older one.
        `encoded`: it hands out Opus packets of PACKET_TICKS ticks for a WebRTC sender
        instead of frames."""
        self.release_mix_minus(speaker_id)
        if encoded:
            track = MixMinusTrack(
                speaker_id,
                encoder=OpusEncoder(),
                ticks_per_packet=PACKET_TICKS,
                shared=self.shared_mix,
            )
        else:
            track = MixMinusTrack(speaker_id)
        self._mix_minus[speaker_id] = track
        return track

    def release_mix_minus(self, speaker_id: str, track: MixMinusTrack | None = None) -> bool:
        current = self._mix_minus.get(speaker_id)
        if current is None or (track is not None and current is not track):
            return False
        del self._mix_minus[speaker_id]
        current.stop()
        return True

    def forget(self, speaker_id: str) -> None:
        """Drop everything about a speaker who left the stage, mute state included."""
        self.remove_input(speaker_id)
        self.release_mix_minus(speaker_id)
        self._speaking.pop(speaker_id, None)
        self._muted_ticks.pop(speaker_id, None)
        self._muted = {key: value for key, value in self._muted.items() if key != speaker_id}

    # --- any thread -------------------------------------------------------------------------

    def set_muted(self, speaker_id: str, muted: bool) -> None:
        """Takes effect on the next tick (≤ 20 ms). Kept across reconnects of the speaker."""
        self._muted = {**self._muted, speaker_id: muted}

    def is_muted(self, speaker_id: str) -> bool:
        return self._muted.get(speaker_id, False)

    def stats(self) -> TickStats:
        return TickStats(
            ticks=self._late.count,
            late_p50_ms=self._late.percentile(50) * 1e3,
            late_p99_ms=self._late.percentile(99) * 1e3,
            late_max_ms=self._late.max * 1e3,
            cost_p50_ms=self._cost.percentile(50) * 1e3,
            cost_p99_ms=self._cost.percentile(99) * 1e3,
            cost_max_ms=self._cost.max * 1e3,
            skipped=self._skipped,
        )

    def recent_lateness(self) -> float:
        """How late ticks started lately, in seconds: the RECENT_QUANTILE over the last
        RECENT_TICKS. What a node announces, so that one falling behind takes no more."""
        return self._late.percentile(RECENT_QUANTILE, RECENT_TICKS)

    # --- the clock --------------------------------------------------------------------------

    async def _run(self) -> None:
        origin = self._monotonic()
        wall_origin = self._clock.now()
        tick = 0
        while True:
            deadline = origin + tick * FRAME_SECONDS
            now = self._monotonic()
            # Always yield once, even when behind, so the input readers get to run.
            await asyncio.sleep(max(0.0, deadline - now))
            now = self._monotonic()
            late = max(0.0, now - deadline)  # before any catching up: the stall itself
            if now - deadline > self.MAX_CATCH_UP:
                missed = int((now - deadline) // FRAME_SECONDS)
                self._fill_skipped(missed, wall_origin + (deadline - origin))
                self._skipped += missed
                tick += missed
                deadline = origin + tick * FRAME_SECONDS
            started = time.perf_counter()
            self.tick(tick, deadline, wall_origin + (deadline - origin))
            self._cost.add(time.perf_counter() - started)
            self._late.add(late)
            tick += 1

    def _fill_skipped(self, missed: int, wall: float) -> None:
        """The recording and the listeners' timeline must not lose time when the machine
        stalls the clock: skipped ticks reach the sink as silence (cheap, no mixing)."""
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        for i in range(missed):
            self._emit_mix(silence, wall + i * FRAME_SECONDS)

    def tick(self, tick: int, now: float, wall: float) -> None:
        """Produce one 20 ms frame of every output. Public so it can be driven by hand."""
        self._tick_index = tick
        inputs = list(self._inputs.values())
        muted = self._muted
        count = len(inputs)
        # One row per input plus a zero row that stands for "no own signal to subtract".
        signals = np.zeros((count + 1, FRAME_SAMPLES), dtype=np.float32)
        for row, entry in enumerate(inputs):
            signals[row] = entry.buffer.pull(now)
        open_gate = np.array(
            [0.0 if muted.get(entry.speaker_id, False) else 1.0 for entry in inputs] + [0.0],
            dtype=np.float32,
        )
        gated = signals * open_gate[:, None]
        total = gated.sum(axis=0)
        listeners = self._live_mix_minus()
        row_of = {entry.speaker_id: row for row, entry in enumerate(inputs)}
        own_rows = [row_of.get(speaker_id, count) for speaker_id, _ in listeners]
        mixes = np.empty((1 + len(listeners), FRAME_SAMPLES), dtype=np.float32)
        mixes[0] = total
        mixes[1:] = total - gated[own_rows]
        keys: list[Hashable] = [None, *(speaker_id for speaker_id, _ in listeners)]
        out = self.limiter.process(keys, mixes)
        self._emit_mix(out[0], wall)
        for row, (speaker_id, track) in enumerate(listeners, start=1):
            if self._hears_the_listener_mix(speaker_id, muted):
                track.deliver(tick, out[0], shared=True)
            else:
                track.deliver(tick, out[row])
        self._update_levels(inputs, signals[:count], muted)

    def _hears_the_listener_mix(self, speaker_id: str, muted: dict[str, bool]) -> bool:
        """Counts the ticks `speaker_id` has been muted (call once per tick), and says
        whether that is long enough: their mix-minus is the listener mix and their own
        encoder has fed on it for a while (see media/mixing/shared_mix.py)."""
        if not muted.get(speaker_id, False):
            self._muted_ticks.pop(speaker_id, None)
            return False
        ticks = self._muted_ticks.get(speaker_id, 0) + 1
        self._muted_ticks[speaker_id] = ticks
        return ticks > SHARE_AFTER_TICKS

    def _live_mix_minus(self) -> list[tuple[str, MixMinusTrack]]:
        ended = [key for key, track in self._mix_minus.items() if track.readyState != "live"]
        for speaker_id in ended:
            del self._mix_minus[speaker_id]
        return list(self._mix_minus.items())

    def _emit_mix(self, pcm: Pcm, wall: float) -> None:
        if self.on_mix is None:
            return
        try:
            self.on_mix(pcm, wall)
        except Exception:
            self._log_sink_error("on_mix")

    def _log_sink_error(self, name: str) -> None:
        # A broken sink must not stop the clock; log the first failure and then rarely.
        if self._sink_errors % 500 == 0:
            log.exception("mixer %s callback failed (%d failures)", name, self._sink_errors + 1)
        self._sink_errors += 1

    # --- levels -----------------------------------------------------------------------------

    def _update_levels(
        self, inputs: list[MixerInput], signals: Floats, muted: dict[str, bool]
    ) -> None:
        powers = np.einsum("ij,ij->i", signals, signals) / FRAME_SAMPLES
        for entry, power in zip(inputs, powers.tolist(), strict=True):
            state = self._speaking.setdefault(entry.speaker_id, Speaking())
            state.add(0.0 if muted.get(entry.speaker_id, False) else power)
        if self._tick_index % self._levels_every == 0:
            self._publish_levels(inputs)

    def _publish_levels(self, inputs: list[MixerInput]) -> None:
        levels: Levels = {}
        for entry in inputs:
            level = self._speaking[entry.speaker_id].report()
            if level is not None:
                levels[entry.speaker_id] = level
        if self.on_levels is None or not levels:
            return
        try:
            self.on_levels(levels)
        except Exception:
            self._log_sink_error("on_levels")

    # --- inputs -----------------------------------------------------------------------------

    async def _read(self, entry: MixerInput) -> None:
        if entry.track is None:
            return
        try:
            while True:
                frame = await entry.track.recv()
                if isinstance(frame, av.AudioFrame):
                    entry.push_frame(frame)
        except MediaStreamError:
            pass  # the track ended (peer closed): the speaker leaves the mix
        finally:
            if self._inputs.get(entry.speaker_id) is entry:
                del self._inputs[entry.speaker_id]
