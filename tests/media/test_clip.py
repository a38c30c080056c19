"""Clips cut from a real recording: the packager records tone bursts at known wall-clock
times in two lives with downtime between them; clips are read back by ffprobe and
decoded by PyAV, and their bursts must be where the wall clock says."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from majlis.media.audio import FRAME_SECONDS, SAMPLE_RATE
from majlis.media.formats.encoder import AAC_FRAME_SAMPLES, AacEncoder
from majlis.media.formats.fmp4 import iter_boxes
from majlis.media.hls.clip import (
    ClipRangeError,
    ListedSegment,
    Listing,
    audio_specific_config,
    cut_clip,
    parse_listing,
    segments_for,
)
from majlis.media.hls.packager import HlsPackager

from .audio_analysis import FULL_SCALE, Floats, decode_with_pyav, ffprobe_json, frames_of

T0 = 1_700_000_000.0
FIRST_SAMPLE_AT = T0 + 1.0  # wall clock of the first sample pushed; signal time 0
# Signal time (seconds after FIRST_SAMPLE_AT) each life of the packager hears.
LIFE_ONE = (0.0, 12.0)
LIFE_TWO = (15.0, 36.0)
# A 1 kHz burst every 1.7 s: not a multiple of the 2.13 s segments, so a clip cut a
# segment (or a frame) off would show its bursts in the wrong places.
BURST_EVERY = 1.7
FIRST_BURST = 0.5
BURST_SECONDS = 0.25
BURST_AMPLITUDE = 0.5
RAMP_SECONDS = 0.005  # raised-cosine edges: no click to smear into pre-echo
# FFmpeg's AAC encoder primes with one frame: the first segment's date is that much
# before the first sample pushed (test_fmp4 checks the encoder's first pts).
PRIMING = AAC_FRAME_SAMPLES
# The first life's bursts land within a millisecond (the ramp's rise to the threshold);
# the second life's frames sit on the first's frame grid, as in the replay, so up to half
# a frame (10.7 ms) off the wall clock. Tighter than the 21 ms of priming, so a clip that
# forgot it fails.
ONSET_TOLERANCE = 0.015
DURATION_TOLERANCE = 0.05


@dataclass(frozen=True)
class Recording:
    directory: Path
    listing: Listing  # ended
    live: bytes  # the live playlist at the end of the first life

    def cut(self, start: float, duration: float, *, origin: float | None = None) -> bytes:
        return cut_from(self.directory, self.listing, start, duration, origin=origin)


def burst_times(begin: float, end: float) -> list[float]:
    """Signal times of the bursts wholly inside [begin, end)."""
    count = math.ceil(end / BURST_EVERY) + 1
    times = [FIRST_BURST + k * BURST_EVERY for k in range(count)]
    return [t for t in times if begin <= t and t + BURST_SECONDS <= end]


def bursts(begin: float, end: float) -> npt.NDArray[np.int16]:
    """The signal over [begin, end): silence and bursts, a whole number of mixer frames."""
    first = round(begin * SAMPLE_RATE)
    t = (first + np.arange(round((end - begin) * SAMPLE_RATE))) / SAMPLE_RATE
    signal = np.zeros(t.size)
    for onset in burst_times(begin, end):
        inside = (t >= onset) & (t < onset + BURST_SECONDS)
        local = t[inside] - onset
        edge = np.minimum(local, BURST_SECONDS - local) / RAMP_SECONDS
        envelope = np.where(edge < 1, 0.5 - 0.5 * np.cos(np.pi * np.minimum(edge, 1)), 1.0)
        signal[inside] = envelope * np.sin(2 * np.pi * 1000 * local)
    return np.round(BURST_AMPLITUDE * FULL_SCALE * signal).astype(np.int16)


def push_life(packager: HlsPackager, begin: float, end: float) -> None:
    for index, frame in enumerate(frames_of(bursts(begin, end))):
        packager.push(frame, FIRST_SAMPLE_AT + begin + index * FRAME_SECONDS)
    assert packager.sync()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    directory = tmp_path_factory.mktemp("clip") / "space"
    first = HlsPackager(directory, space_started_at=T0)
    push_life(first, *LIFE_ONE)
    live = first.feed.snapshot().playlist
    first.close()
    second = HlsPackager(directory, space_started_at=T0)
    push_life(second, *LIFE_TWO)
    second.end()
    listing = parse_listing((directory / "index.m3u8").read_bytes())
    return Recording(directory, listing, live)


def cut_from(
    directory: Path,
    listing: Listing,
    start: float,
    duration: float,
    *,
    origin: float | None = None,
) -> bytes:
    """What the origin side does: choose the segments, fetch them, cut."""
    chosen = segments_for(listing, start, duration)
    pairs = [(segment, (directory / segment.uri).read_bytes()) for segment in chosen]
    init = (directory / listing.init_uri).read_bytes()
    return cut_clip(init, pairs, listing.origin if origin is None else origin, start, duration)


def decode(tmp_path: Path, clip: bytes) -> Floats:
    path = tmp_path / "clip.m4a"
    path.write_bytes(clip)
    return decode_with_pyav(path)


def ffprobe(tmp_path: Path, clip: bytes) -> dict[str, object]:
    path = tmp_path / "probed.m4a"
    path.write_bytes(clip)
    return ffprobe_json(path)


def onsets(decoded: Floats) -> list[float]:
    """Seconds at which the audio gets loud (a tenth of a burst's peak) after 50 ms or more
    of quiet."""
    loud = np.flatnonzero(np.abs(decoded) > 0.1 * BURST_AMPLITUDE * FULL_SCALE)
    if loud.size == 0:
        return []
    starts = loud[np.concatenate(([True], np.diff(loud) > 0.05 * SAMPLE_RATE))]
    return [float(index) / SAMPLE_RATE for index in starts]


def expected_onsets(listing: Listing, start: float, duration: float) -> list[float]:
    """Where the recorded bursts that begin inside the clip are, on the clip's clock."""
    since_origin = FIRST_SAMPLE_AT - listing.origin
    recorded = burst_times(*LIFE_ONE) + burst_times(*LIFE_TWO)
    shifted = [t + since_origin - start for t in recorded]
    # A burst less than a ramp from either edge may or may not cross the threshold.
    return [t for t in shifted if RAMP_SECONDS < t < duration - RAMP_SECONDS]


def assert_onsets(decoded: Floats, expected: list[float]) -> None:
    found = onsets(decoded)
    assert len(found) == len(expected), f"onsets {found}, expected {expected}"
    for got, want in zip(found, expected, strict=True):
        assert abs(got - want) <= ONSET_TOLERANCE, f"onset at {got:.4f} s, expected {want:.4f} s"


def top_level_boxes(data: bytes) -> list[bytes]:
    return [kind for kind, _, _ in iter_boxes(data)]


# --- clips ---------------------------------------------------------------------------


def test_a_clip_from_the_middle_is_aac_lasting_what_was_asked(
    recording: Recording, tmp_path: Path
) -> None:
    clip = recording.cut(3.21, 10.0)
    assert top_level_boxes(clip) == [b"ftyp", b"moov", b"mdat"]  # classic, not fragmented
    probed = ffprobe(tmp_path, clip)
    streams = probed["streams"]
    assert isinstance(streams, list) and len(streams) == 1
    assert streams[0]["codec_type"] == "audio"
    assert streams[0]["codec_name"] == "aac"
    assert int(streams[0]["sample_rate"]) == SAMPLE_RATE
    format_ = probed["format"]
    assert isinstance(format_, dict)
    assert abs(float(format_["duration"]) - 10.0) <= DURATION_TOLERANCE
    decoded = decode(tmp_path, clip)
    # FFmpeg trims the pre-roll exactly but decodes the clip's last frame whole.
    assert 10 * SAMPLE_RATE <= decoded.size < 10 * SAMPLE_RATE + AAC_FRAME_SAMPLES
    assert abs(decoded.size / SAMPLE_RATE - 10.0) <= DURATION_TOLERANCE


@pytest.mark.parametrize(
    ("start", "duration"),
    [
        (1.9, 8.0),  # the first life only
        (6.9, 12.0),  # across the downtime: silence, then the second life's bursts
        (12.6, 2.0),  # inside the downtime: nothing but silence
        (3.3, 30.0),  # the longest the API makes, across both lives
    ],
)
def test_the_clip_holds_the_bursts_of_its_range(
    recording: Recording, tmp_path: Path, start: float, duration: float
) -> None:
    decoded = decode(tmp_path, recording.cut(start, duration))
    assert abs(decoded.size / SAMPLE_RATE - duration) <= DURATION_TOLERANCE
    assert_onsets(decoded, expected_onsets(recording.listing, start, duration))


def test_a_clip_is_the_replay_to_the_sample_from_an_origin_past_the_priming(
    recording: Recording, tmp_path: Path
) -> None:
    """The replay hides the priming frame, so its position p is wall time listing.origin +
    priming + p; with that origin a clip decodes to the replay's very samples."""
    replay = decode_with_pyav(recording.directory / "replay.m4a")
    start, duration = 2.5, 6.0
    origin = recording.listing.origin + PRIMING / SAMPLE_RATE
    clip = decode(tmp_path, recording.cut(start, duration, origin=origin))
    first, count = round(start * SAMPLE_RATE), round(duration * SAMPLE_RATE)
    # Bands the encoder coded as noise (PNS) are filled from a random generator the
    # decoder keeps from its first frame on, so they differ a little (about -60 dB) with
    # where decoding began. One sample of misalignment would be some 2000 steps off.
    assert np.max(np.abs(clip[:count] - replay[first : first + count])) < 64  # int16 steps


def test_clips_at_the_very_start_and_the_very_end(recording: Recording, tmp_path: Path) -> None:
    length = recording.listing.length
    assert abs(length - (LIFE_TWO[1] + PRIMING / SAMPLE_RATE)) < 0.1
    for start, duration in [(0.0, 5.0), (length - 5.0, 5.0)]:
        clip = recording.cut(start, duration)
        probed = ffprobe(tmp_path, clip)
        format_ = probed["format"]
        assert isinstance(format_, dict)
        assert abs(float(format_["duration"]) - duration) <= DURATION_TOLERANCE
        decoded = decode(tmp_path, clip)
        assert abs(decoded.size / SAMPLE_RATE - duration) <= DURATION_TOLERANCE
        assert_onsets(decoded, expected_onsets(recording.listing, start, duration))


def test_a_live_playlist_cuts_its_last_seconds(recording: Recording, tmp_path: Path) -> None:
    assert b"#EXT-X-PART:" in recording.live
    assert b"#EXT-X-PRELOAD-HINT:" in recording.live
    assert b"#EXT-X-ENDLIST" not in recording.live
    live = parse_listing(recording.live)
    assert not live.ended
    assert live.origin == recording.listing.origin
    # Only complete segments: the one in progress has parts but no URI yet.
    assert [s.uri for s in live.segments] == [f"s{i}.m4s" for i in range(5)]
    start, duration = live.length - 4.0, 4.0
    decoded = decode(tmp_path, cut_from(recording.directory, live, start, duration))
    assert abs(decoded.size / SAMPLE_RATE - duration) <= DURATION_TOLERANCE
    assert_onsets(decoded, expected_onsets(live, start, duration))


# --- choosing segments -------------------------------------------------------------------


def test_segments_for_adds_the_pre_roll_segment_and_the_end_of_a_gap(
    recording: Recording,
) -> None:
    listing = recording.listing
    uris = [segment.uri for segment in listing.segments]
    inside_third = listing.segments[2].start - listing.origin + 0.5
    assert [s.uri for s in segments_for(listing, inside_third, 1.0)] == uris[1:3]
    assert [s.uri for s in segments_for(listing, 0.0, 1.0)] == uris[:1]
    # Ending in the downtime: the second life's first segment says where silence ends.
    segments = listing.segments
    life_two = next(
        i for i in range(1, len(segments)) if segments[i].start > segments[i - 1].end + 1
    )
    last_of_life_one = life_two - 1
    in_gap = segments[last_of_life_one].end - listing.origin + 0.5
    chosen = segments_for(listing, in_gap, 1.0)
    assert [s.uri for s in chosen] == uris[last_of_life_one : last_of_life_one + 2]
    everything = segments_for(listing, 0.0, listing.length)
    assert [s.uri for s in everything] == uris


@pytest.mark.parametrize(
    ("start", "duration", "reason"),
    [
        (-0.5, 5.0, "cannot start before the recording"),
        (1.0, 0.0, "must last more than 0 s"),
        (1.0, -2.0, "must last more than 0 s"),
        (30.0, 10.0, r"the recording holds 0-36\.0 s"),
        (42.0, 1.0, r"the recording holds 0-36\.0 s"),
        (math.nan, 1.0, "numbers of seconds"),
    ],
)
def test_ranges_outside_the_recording_are_refused(
    recording: Recording, start: float, duration: float, reason: str
) -> None:
    with pytest.raises(ClipRangeError, match=reason):
        segments_for(recording.listing, start, duration)


def test_cut_clip_refuses_a_range_its_segments_do_not_hold(recording: Recording) -> None:
    listing = recording.listing
    init = (recording.directory / listing.init_uri).read_bytes()
    third = listing.segments[2]
    pairs = [(third, (recording.directory / third.uri).read_bytes())]
    with pytest.raises(ClipRangeError, match="do not hold"):
        cut_clip(init, pairs, listing.origin, 0.5, 1.0)
    with pytest.raises(ClipRangeError, match="must last more than 0 s"):
        cut_clip(init, pairs, listing.origin, 5.0, 0.0)


# --- reading the playlist and the init segment ------------------------------------------


def test_the_ended_listing(recording: Recording) -> None:
    listing = recording.listing
    assert listing.ended
    assert listing.init_uri == "init.mp4"
    # The first date is the priming frame's, to the millisecond.
    assert abs(listing.origin - (FIRST_SAMPLE_AT - PRIMING / SAMPLE_RATE)) <= 0.0005
    starts = [segment.start for segment in listing.segments]
    assert starts == sorted(starts)
    assert all(isinstance(segment, ListedSegment) for segment in listing.segments)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"\xff\xfe\x00garbage", "UTF-8"),
        (b"<html>not a playlist</html>", "#EXTM3U"),
        (b"", "#EXTM3U"),
        (b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n', "no complete segment"),
        (b'#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.0,\ns0.m4s\n', "PROGRAM-DATE-TIME"),
        (
            b"#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.979Z\n#EXTINF:2,\ns0.m4s\n",
            "MAP",
        ),
        (b'#EXTM3U\n#EXT-X-MAP:URI="i"\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n', "not a date"),
        (b'#EXTM3U\n#EXT-X-MAP:URI="i"\n#EXTINF:soon,\n', "not a number"),
        (b'#EXTM3U\n#EXT-X-MAP:URI="i"\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n', "delta update"),
    ],
)
def test_playlists_that_cannot_be_cut(text: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_listing(text)


def test_audio_specific_config_is_the_encoders(recording: Recording) -> None:
    init = (recording.directory / "init.mp4").read_bytes()
    assert audio_specific_config(init) == AacEncoder().audio_specific_config
    with pytest.raises(ValueError):
        audio_specific_config(init[:40])
    with pytest.raises(ValueError):
        audio_specific_config(b"not an mp4 at all")
