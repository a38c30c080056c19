"""The mixer: every 20 ms, one frame from each speaker's jitter buffer becomes the listener mix
and one mix-minus per speaker (everyone unmuted except themself).

It runs on a MediaLoop: its own thread with its own asyncio loop, never the loop serving HTTP.
Speakers' aiortc peers live on that loop too, so their tracks (the inputs, read by one reader
task per speaker) and the MixMinusTracks (read by aiortc's senders) never cross threads.

Everything on one tick is a handful of numpy operations on a (speakers × 960) float32 matrix.
int16 inputs summed in float32 stay exact integers (13 × 32768 ≪ 2²⁴), so a mix-minus is
exactly "total minus own signal" and carries none of the speaker's own audio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from majlis.clock import Clock, SystemClock
from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from majlis.media.convert import MonoConverter, Pcm, Reframer, mono_to_frame
from majlis.media.jitter import JitterBuffer, JitterConfig, JitterStats
from majlis.media.opus import PACKET_TICKS, FrameGrouper, OpusEncoder, packet_of
from majlis.media.shared_mix import SHARE_AFTER_TICKS, SharedMix

__all__ = [
    "SILENCE_DB",
    "Levels",
    "LevelsSink",
    "Limiter",
    "MediaLoop",
    "MixMinusTrack",
    "MixSink",
    "Mixer",
    "MixerInput",
    "TickStats",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
Floats = npt.NDArray[np.float32]

FULL_SCALE = 32767.0
SILENCE_DB = -100.0

Levels = dict[str, tuple[float, bool]]
MixSink = Callable[[Pcm, float], None]
LevelsSink = Callable[[Levels], None]


class MediaLoop:
    """A thread owning an asyncio loop for the media plane.

    start()/stop() from any thread but the loop's own; call()/run()/submit() hand work to it.
    """

    def __init__(self, name: str = "majlis-media") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the media loop is not started")
        return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the media loop is already started")
        loop = _new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name=self.name, daemon=True
        )
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, cancel what still runs on it and join the thread."""
        if self.in_loop():
            raise RuntimeError("the media loop cannot stop itself from inside")
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the media loop from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the media loop from a coroutine on any loop (the HTTP loop)."""
        if self.in_loop():
            return await coro
        return await asyncio.wrap_future(self.call(coro))

    def submit(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Run a plain function on the media loop; its result comes back as a future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def runner() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(runner)
        return future

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            MediaLoop._shutdown(loop)

    @staticmethod
    def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists: for 13 speakers the loop's own work (datagrams, callbacks,
    task switches for ~1,300 packets a second) is a tenth of the node's CPU, and uvloop
    does it in C (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:  # Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Limiter:
    """Keeps each output row below `threshold_dbfs` with a smooth gain, never a clip.

    Gain is computed per block of 48 samples (1 ms) from the block's peak. Output is delayed by
    one block, which is the limiter's lookahead: the gain at every block edge is low enough for
    both blocks around it, and the gain moves linearly inside a block, so no sample exceeds the
    threshold (1 ms attack). It recovers exponentially (`release_seconds`). State is kept per
    row key, so the listener mix and each mix-minus limit independently. A hard clip remains
    as the last resort and is counted in `hard_clipped` (it should stay 0).
    """

    def __init__(
        self,
        *,
        threshold_dbfs: float = -1.0,
        release_seconds: float = 0.150,
        block: int = 48,
    ) -> None:
        if FRAME_SAMPLES % block:
            raise ValueError(f"block must divide {FRAME_SAMPLES}")
        self.threshold = FULL_SCALE * 10.0 ** (threshold_dbfs / 20.0)
        self._block = block
        self._blocks = FRAME_SAMPLES // block
        release = math.exp(-block / (SAMPLE_RATE * release_seconds))
        steps = np.arange(self._blocks + 1, dtype=np.float64)
        self._grow = release**-steps
        self._decay = release**steps
        self._ramp = (np.arange(block, dtype=np.float32) / block).astype(np.float32)
        self._state: dict[Hashable, tuple[float, Floats]] = {}
        self.hard_clipped = 0
        self.limited_frames = 0

    def gain(self, key: Hashable) -> float:
        """The gain reached at the end of the last frame for `key` (1.0: not limiting)."""
        return self._state.get(key, (1.0, None))[0]

    def process(self, keys: Sequence[Hashable], frames: Floats) -> Pcm:
        """Limit each row of `frames` (rows × 960, int16 scale) under its key; keys missing
        from this call are forgotten."""
        rows = len(keys)
        start_gains = np.ones(rows, dtype=np.float64)
        tails = np.zeros((rows, self._block), dtype=np.float32)
        for row, key in enumerate(keys):
            state = self._state.get(key)
            if state is not None:
                start_gains[row], tails[row] = state
        combined = np.concatenate((tails, frames), axis=1)
        out = combined[:, :FRAME_SAMPLES]
        peaks = np.abs(combined).reshape(rows, self._blocks + 1, self._block).max(axis=2)
        if rows and (peaks.max() > self.threshold or start_gains.min() < 1.0):
            out, end_gains = self._apply_gain(out, peaks, start_gains)
        else:
            end_gains = start_gains
        self._state = {
            key: (float(end_gains[row]), combined[row, FRAME_SAMPLES:].copy())
            for row, key in enumerate(keys)
        }
        return self._to_int16(out)

    def _apply_gain(
        self, out: Floats, peaks: npt.NDArray[np.float32], start_gains: npt.NDArray[np.float64]
    ) -> tuple[Floats, npt.NDArray[np.float64]]:
        self.limited_frames += 1
        rows = out.shape[0]
        wanted = np.minimum(1.0, self.threshold / np.maximum(peaks, 1.0).astype(np.float64))
        # Edge k sits between blocks k-1 and k: its gain must suit both.
        edges = np.minimum(wanted[:, :-1], wanted[:, 1:])
        depth = np.empty((rows, self._blocks + 1), dtype=np.float64)
        depth[:, 0] = 1.0 - start_gains
        depth[:, 1:] = 1.0 - edges
        # Release: depth_k = max(wanted_k, depth_{k-1} · r), solved for all edges at once.
        depth = np.maximum.accumulate(depth * self._grow, axis=1) * self._decay
        gains = (1.0 - depth).astype(np.float32)
        slopes = gains[:, 1:] - gains[:, :-1]
        envelope = gains[:, :-1, None] + slopes[:, :, None] * self._ramp
        limited = (out * envelope.reshape(rows, FRAME_SAMPLES)).astype(np.float32)
        return limited, 1.0 - depth[:, -1]

    def _to_int16(self, out: Floats) -> Pcm:
        rounded = np.rint(out)
        if rounded.size and (rounded.max() > FULL_SCALE or rounded.min() < -FULL_SCALE):
            self.hard_clipped += int(np.count_nonzero(np.abs(rounded) > FULL_SCALE))
            rounded = np.clip(rounded, -FULL_SCALE, FULL_SCALE)
        return rounded.astype(np.int16)


class MixMinusTrack(MediaStreamTrack):
    """What one speaker hears: every tick's mix without their own voice, as an audio track.

    With an encoder, recv() returns Opus packets (what the speaker's aiortc sender gets: it
    sends packets as they are), each carrying `ticks_per_packet` consecutive ticks; without
    one, it returns each tick as an s16 stereo frame. pts count 960 per tick since the first
    tick read, so a reader that falls behind (older ticks are dropped past `max_queued`)
    sees a pts gap, as after a loss; a packet never spans a gap. With `shared`, packets are
    cut at the same ticks on every track, and a packet whose ticks were all delivered
    flagged shared (the listener mix, to a muted speaker) is encoded once for every track
    that gets it (media/shared_mix.py). Lives on the media loop: deliver() and recv() must
    run there.
    """

    kind = "audio"

    def __init__(
        self,
        speaker_id: str,
        *,
        encoder: OpusEncoder | None = None,
        ticks_per_packet: int = 1,
        max_queued: int = 5,
        shared: SharedMix | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= ticks_per_packet <= 3 or (encoder is None and ticks_per_packet != 1):
            raise ValueError("1 to 3 ticks per packet (Opus frames of 20 to 60 ms), encoded")
        self.speaker_id = speaker_id
        self.dropped = 0
        self._encoder = encoder
        self._ticks_per_packet = ticks_per_packet
        self._queue: asyncio.Queue[tuple[int, Pcm] | None] = asyncio.Queue(
            max(max_queued, 2 * ticks_per_packet)
        )
        self._grouper = FrameGrouper(self._next_tick, aligned=shared is not None)
        self._first_tick: int | None = None
        self._shared = shared if encoder is not None else None
        self._shared_ticks: set[int] = set()
        self._on_shared = False  # the last packet came from the shared stream

    def deliver(self, tick: int, samples: Pcm, shared: bool = False) -> None:
        if self.readyState != "live":
            return
        if shared and self._shared is not None:
            self._shared_ticks.add(tick)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait((tick, samples))

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        first_tick, samples = await self._grouper.next(self._ticks_per_packet)
        if self._first_tick is None:
            self._first_tick = first_tick
        pts = (first_tick - self._first_tick) * FRAME_SAMPLES
        if self._encoder is None:
            # Stereo with equal channels: aiortc's encoder would upmix mono at -3 dB
            # (swresample's centre mix level); the speaker hears the others at their level.
            return mono_to_frame(samples, pts, stereo=True)
        return packet_of(self._encode(self._encoder, first_tick, samples), pts)

    def _encode(self, encoder: OpusEncoder, first_tick: int, samples: Pcm) -> bytes:
        shared = self._shared
        if shared is not None:
            end = first_tick + samples.size // FRAME_SAMPLES
            flagged = all(tick in self._shared_ticks for tick in range(first_tick, end))
            self._shared_ticks = {tick for tick in self._shared_ticks if tick >= end}
            data = shared.packet(first_tick, samples, encoder) if flagged else None
            if data is not None:
                self._on_shared = True
                return data
            if self._on_shared:
                shared.hand_over(encoder)
                self._on_shared = False
        return encoder.encode_bytes(samples)

    async def _next_tick(self) -> tuple[int, Pcm]:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        return item

    def stop(self) -> None:
        if self.readyState == "live":
            # Wake a pending recv() so the reader sees the end.
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
        super().stop()


@dataclass(frozen=True, slots=True)
class TickStats:
    ticks: int
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    cost_p50_ms: float
    cost_p99_ms: float
    cost_max_ms: float
    skipped: int


class _Recent:
    """The last `size` values of a measurement (a ring), plus the maximum ever seen."""

    def __init__(self, size: int = 15_000) -> None:
        self._values = np.zeros(size, dtype=np.float64)
        self.count = 0
        self.max = 0.0

    def add(self, value: float) -> None:
        self._values[self.count % self._values.size] = value
        self.count += 1
        self.max = max(self.max, value)

    def percentile(self, q: float) -> float:
        filled = min(self.count, self._values.size)
        if filled == 0:
            return 0.0
        return float(np.percentile(self._values[:filled], q))


@dataclass(slots=True)
class _Speaking:
    """Per-speaker level accumulation and the speaking flag with hysteresis."""

    speaking: bool = False
    quiet_ticks: int = 0
    power_sum: float = 0.0
    ticks: int = 0


def _power_to_db(power: float) -> float:
    if power <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 10.0 * math.log10(power / FULL_SCALE**2))


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

    SPEAKING_ON_DB = -40.0
    SPEAKING_OFF_DB = -50.0
    SPEAKING_HOLD_TICKS = 20  # 400 ms below OFF before the flag drops
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
        self._jitter_config = jitter
        self._levels_every = max(1, round(levels_interval / FRAME_SECONDS))
        self._clock = clock or SystemClock()
        self._monotonic = monotonic
        self._inputs: dict[str, MixerInput] = {}
        self._mix_minus: dict[str, MixMinusTrack] = {}
        # Replaced as a whole on every change, so other threads can flip it safely.
        self._muted: dict[str, bool] = {}
        self._speaking: dict[str, _Speaking] = {}
        self._task: asyncio.Task[None] | None = None
        self._late = _Recent()
        self._cost = _Recent()
        self._skipped = 0
        self._sink_errors = 0
        self._tick_index = 0
        # The listener mix encoded once for every muted speaker (media/shared_mix.py).
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
        entry = MixerInput(speaker_id, JitterBuffer(self._jitter_config), self._monotonic)
        self._inputs[speaker_id] = entry
        return entry

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
            if now - deadline > self.MAX_CATCH_UP:
                missed = int((now - deadline) // FRAME_SECONDS)
                self._fill_skipped(missed, wall_origin + (deadline - origin))
                self._skipped += missed
                tick += missed
                deadline = origin + tick * FRAME_SECONDS
            started = time.perf_counter()
            self.tick(tick, deadline, wall_origin + (deadline - origin))
            self._cost.add(time.perf_counter() - started)
            self._late.add(max(0.0, now - deadline))
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
        encoder has fed on it for a while (see media/shared_mix.py)."""
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
            state = self._speaking.setdefault(entry.speaker_id, _Speaking())
            if muted.get(entry.speaker_id, False):
                power = 0.0
            state.power_sum += power
            state.ticks += 1
            self._update_speaking(state, _power_to_db(power))
        if self._tick_index % self._levels_every == 0:
            self._publish_levels(inputs)

    def _update_speaking(self, state: _Speaking, level_db: float) -> None:
        if level_db >= self.SPEAKING_ON_DB:
            state.speaking = True
            state.quiet_ticks = 0
        elif level_db < self.SPEAKING_OFF_DB:
            state.quiet_ticks += 1
            if state.quiet_ticks >= self.SPEAKING_HOLD_TICKS:
                state.speaking = False
        else:
            state.quiet_ticks = 0

    def _publish_levels(self, inputs: list[MixerInput]) -> None:
        levels: Levels = {}
        for entry in inputs:
            state = self._speaking[entry.speaker_id]
            if state.ticks:
                levels[entry.speaker_id] = (
                    round(_power_to_db(state.power_sum / state.ticks), 1),
                    state.speaking,
                )
            state.power_sum = 0.0
            state.ticks = 0
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
