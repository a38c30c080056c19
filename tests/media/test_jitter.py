"""JitterBuffer under deterministic network patterns, simulated without sleeping.

Every frame carries its sender index in its samples, so the test can tell exactly which frame
the buffer played on each tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS
from majlis.media.mixing.jitter import JitterBuffer, JitterConfig, PullKind

START = 1_000.0
BASE_LATENCY = 0.030


def frame_for(index: int) -> np.ndarray:
    return np.full(FRAME_SAMPLES, index % 30_000 + 1, dtype=np.int16)


@dataclass
class Run:
    kinds: list[PullKind] = field(default_factory=list)
    played: list[int] = field(default_factory=list)  # sender index of each played frame
    delays: list[float] = field(default_factory=list)  # arrival → play of each played frame
    virtual_delays: list[float] = field(default_factory=list)
    buffer: JitterBuffer = field(default_factory=JitterBuffer)

    def first_played_tick(self) -> int:
        return self.kinds.index(PullKind.PLAYED)

    def span(self) -> list[PullKind]:
        """Ticks from the first to the last played frame: the stream, without start and tail."""
        last = len(self.kinds) - 1 - self.kinds[::-1].index(PullKind.PLAYED)
        return self.kinds[self.first_played_tick() : last + 1]

    def count(self, kind: PullKind) -> int:
        return self.span().count(kind)


def simulate(
    frames: int,
    *,
    lost: Callable[[int], bool] = lambda i: False,
    jitter: Callable[[int], float] = lambda i: 0.0,
    duplicated: Callable[[int], bool] = lambda i: False,
    drift: float = 0.0,
    pts_of: Callable[[int], int] = lambda i: i * FRAME_SAMPLES + 12_345,
    tail: float = 0.5,
) -> Run:
    """Sender emits `frames` frames; its clock runs `drift` fast (0.001 = +0.1 %)."""
    arrivals: list[tuple[float, int]] = []
    for index in range(frames):
        if lost(index):
            continue
        sent = START + index * FRAME_SECONDS / (1.0 + drift)
        arrival = sent + BASE_LATENCY + jitter(index)
        arrivals.append((arrival, index))
        if duplicated(index):
            arrivals.append((arrival + 0.003, index))
    arrivals.sort()
    run = Run()
    end = arrivals[-1][0] + tail
    tick = 0
    next_arrival = 0
    while (now := START + tick * FRAME_SECONDS) <= end:
        while next_arrival < len(arrivals) and arrivals[next_arrival][0] <= now:
            arrival, index = arrivals[next_arrival]
            run.buffer.push(pts_of(index), frame_for(index), arrival)
            next_arrival += 1
        out = run.buffer.pull(now)
        if out.shape != (FRAME_SAMPLES,) or out.dtype != np.int16:
            raise AssertionError("a pull must return one int16 frame")
        run.kinds.append(run.buffer.last_kind)
        if run.buffer.last_kind is PullKind.PLAYED:
            run.played.append(int(out[0]) - 1)
            run.delays.append(run.buffer.last_delay or 0.0)
        delay = run.buffer.delay(now)
        if delay is not None:
            run.virtual_delays.append(delay)
        tick += 1
    return run


def longest_silence(kinds: list[PullKind]) -> int:
    longest = current = 0
    for kind in kinds:
        current = current + 1 if kind in (PullKind.SILENCE, PullKind.WAITING) else 0
        longest = max(longest, current)
    return longest


def jitter_40ms(seed: int) -> Callable[[int], float]:
    """Deterministic arrival jitter of ±40 ms around the base latency (40 ms added so ≥ 0)."""
    offsets = np.random.default_rng(seed).uniform(-0.040, 0.040, size=100_000)
    return lambda i: 0.040 + float(offsets[i])


def lose_5_percent(i: int) -> bool:
    return i % 20 == 7


def test_clean_stream_plays_every_frame_in_order_at_minimum_delay() -> None:
    run = simulate(1_000)
    assert run.played == sorted(run.played)
    assert run.count(PullKind.CONCEALED) == 0
    # The target shrinks from 60 ms to the floor: at most a frame is dropped on the way.
    assert run.buffer.stats.drift_drops <= 1
    assert len(run.played) + run.buffer.stats.drift_drops == 1_000
    assert run.buffer.target_delay == pytest.approx(0.040)
    # Starts at 60 ms and settles down toward the 40 ms floor.
    assert max(run.delays) <= 0.060 + FRAME_SECONDS
    assert run.delays[-1] <= 0.040 + FRAME_SECONDS + 1e-9


def test_first_frame_waits_for_the_initial_target() -> None:
    run = simulate(50)
    first = run.first_played_tick()
    # The first frame arrives 30 ms after START and must be held ≥ 60 ms.
    assert START + first * FRAME_SECONDS - (START + BASE_LATENCY) >= 0.060
    assert all(kind is PullKind.WAITING for kind in run.kinds[:first])


def test_five_percent_loss_is_concealed_and_output_stays_continuous() -> None:
    run = simulate(2_000, lost=lose_5_percent)
    lost = sum(1 for i in range(2_000) if lose_5_percent(i))
    assert lost == 100
    drops = run.buffer.stats.drift_drops
    assert drops <= 1
    assert len(run.played) + drops == 2_000 - lost
    assert set(run.played) <= {i for i in range(2_000) if not lose_5_percent(i)}
    assert run.count(PullKind.CONCEALED) == lost
    # Only single frames are missing: never a tick of silence between frames.
    assert longest_silence(run.span()) == 0


def test_concealment_repeats_last_frame_with_fade_then_silence() -> None:
    buffer = JitterBuffer()
    buffer.push(0, np.full(FRAME_SAMPLES, 1_000, dtype=np.int16), arrival=0.0)
    out = buffer.pull(0.1)
    assert buffer.last_kind is PullKind.PLAYED and out[0] == 1_000
    ends = []
    for tick in range(6):
        out = buffer.pull(0.12 + tick * FRAME_SECONDS)
        ends.append((buffer.last_kind, int(out[0]), int(out[-1])))
    kinds = [kind for kind, _, _ in ends]
    assert kinds == [PullKind.CONCEALED] * 4 + [PullKind.SILENCE] * 2
    starts = [first for _, first, _ in ends]
    assert starts[0] == 1_000 and starts[1] == 800 and starts[2] == 500 and starts[3] == 200
    assert starts[4] == 0
    # Within a frame the level falls smoothly toward the next gain.
    assert ends[0][2] == 800


def test_jitter_of_40ms_raises_target_and_plays_nearly_everything() -> None:
    run = simulate(3_000, jitter=jitter_40ms(1))
    target = run.buffer.target_delay
    assert 0.080 <= target <= 0.200
    stats = run.buffer.stats
    # After adapting (the first seconds), frames come in time.
    assert stats.late <= 10
    assert len(run.played) >= 3_000 - 15
    assert run.played == sorted(run.played)
    assert max(run.delays) <= 0.200 + 2 * FRAME_SECONDS
    assert longest_silence(run.span()) == 0


def test_reordered_frames_play_in_order() -> None:
    def swap_pairs(i: int) -> float:
        # Every 10th frame arrives 25 ms late, after its successor.
        return 0.025 if i % 10 == 3 else 0.0

    run = simulate(1_000, jitter=swap_pairs)
    assert run.played == sorted(run.played)
    assert len(run.played) + run.buffer.stats.drift_drops == 1_000
    assert run.buffer.stats.late == 0
    assert run.count(PullKind.CONCEALED) == 0


def test_duplicates_are_played_once() -> None:
    run = simulate(500, duplicated=lambda i: i % 7 == 0)
    assert run.played == sorted(set(run.played))
    assert len(run.played) + run.buffer.stats.drift_drops == 500
    assert run.buffer.stats.duplicates == len(range(0, 500, 7))


def test_frame_arriving_after_its_slot_was_played_is_dropped() -> None:
    buffer = JitterBuffer()
    for index in range(5):
        buffer.push(index * FRAME_SAMPLES, frame_for(index), arrival=index * FRAME_SECONDS)
    buffer.push(6 * FRAME_SAMPLES, frame_for(6), arrival=0.12)
    for tick in range(6):
        buffer.pull(0.07 + tick * FRAME_SECONDS)
    # Slot 5 was concealed on the way to slot 6; its copy now arrives too late.
    assert buffer.stats.concealed == 1
    assert buffer.push(5 * FRAME_SAMPLES, frame_for(5), arrival=0.2) is False
    assert buffer.stats.late == 1


@pytest.mark.parametrize("drift", [0.001, -0.001])
def test_clock_drift_is_absorbed_with_bounded_delay(drift: float) -> None:
    frames = 30_000  # 10 minutes: 0.1 % drift is 30 frames either way
    run = simulate(frames, drift=drift)
    stats = run.buffer.stats
    if drift > 0:
        # The sender produces 30 frames more than we play: they must be dropped one by one.
        assert 25 <= stats.drift_drops <= 35
        assert run.count(PullKind.CONCEALED) <= 2
    else:
        # The sender produces 30 frames fewer: the buffer stretches by concealing.
        assert 25 <= run.count(PullKind.CONCEALED) - stats.drift_drops <= 35
    assert len(run.played) + stats.drift_drops + stats.overflow_drops == frames
    assert run.played == sorted(run.played)
    steady = run.delays[500:]
    assert max(steady) <= run.buffer.config.min_delay + 2 * FRAME_SECONDS + 0.005
    assert min(steady) >= 0.0


def test_everything_at_once_keeps_output_continuous_and_delay_bounded() -> None:
    jitter = jitter_40ms(7)
    run = simulate(
        15_000,
        lost=lose_5_percent,
        jitter=jitter,
        duplicated=lambda i: i % 31 == 0,
        drift=0.001,
    )
    stats = run.buffer.stats
    expected = sum(1 for i in range(15_000) if not lose_5_percent(i))
    # Every arrival is either played or accounted for as a duplicate, late or drift drop.
    assert len(run.played) + stats.late + stats.drift_drops + stats.overflow_drops == expected
    assert stats.late <= 20
    assert run.played == sorted(run.played)
    assert max(run.delays) <= 0.200 + 2 * FRAME_SECONDS
    assert longest_silence(run.span()) == 0


def test_pts_restart_resets_the_timeline() -> None:
    buffer = JitterBuffer()
    for index in range(20):
        buffer.push(10_000_000 + index * FRAME_SAMPLES, frame_for(index), index * 0.02)
        buffer.pull(0.1 + index * 0.02)
    # The sender restarts its timestamps at zero.
    for index in range(20):
        buffer.push(index * FRAME_SAMPLES, frame_for(100 + index), 0.4 + index * 0.02)
        buffer.pull(0.5 + index * 0.02)
    assert buffer.stats.resets == 1
    assert buffer.last_kind is PullKind.PLAYED


def test_overflow_from_a_burst_is_trimmed() -> None:
    buffer = JitterBuffer(JitterConfig(max_delay=0.100))
    buffer.push(0, frame_for(0), 0.0)
    buffer.pull(0.1)
    # 30 frames arrive at once after a stall: at most 2 × max_delay may be kept.
    for index in range(1, 31):
        buffer.push(index * FRAME_SAMPLES, frame_for(index), 0.12)
    assert buffer.buffered <= 10
    assert buffer.stats.overflow_drops == 20


def test_wrong_frame_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="960"):
        JitterBuffer().push(0, np.zeros(480, dtype=np.int16), 0.0)
