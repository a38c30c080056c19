"""A replay transcribed: espeak-ng sentences recorded by the real packager, then read back.

The speech goes through the whole recording path (AAC in fMP4 segments, the replay's remux
with its edit list), so the times checked are the replay's clock, as listeners see it.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from majlis.media.audio import FRAME_SECONDS, SAMPLE_RATE
from majlis.media.captions.replay import TranscriptionStopped, replay_frames, transcribe_replay
from majlis.media.captions.transcriber import WhisperTranscriber
from majlis.media.captions.vad import SileroModel
from majlis.media.captions.wer import word_error_rate
from majlis.media.hls.packager import HlsPackager

from .speech import espeak, frames, silence, sound_bounds

MAX_WER = 0.3
TIME_TOLERANCE = 0.5
T0 = 1_700_000_000.0
SAID = (
    "The library will open a new reading room next spring.",
    "Please bring your questions about the budget to the meeting.",
)


def test_a_recorded_replay_is_transcribed_on_its_own_clock(
    whisper: WhisperTranscriber, silero: SileroModel, workdir: Path, tmp_path: Path
) -> None:
    pieces = [silence(1.0)]
    placed: list[tuple[float, float]] = []  # where each sentence's sound is, in seconds
    for text in SAID:
        speech = espeak(text, workdir)
        offset = sum(p.size for p in pieces) / SAMPLE_RATE
        start, end = sound_bounds(speech)
        placed.append((offset + start, offset + end))
        pieces += [speech, silence(2.0)]
    audio = np.concatenate(pieces)

    packager = HlsPackager(tmp_path / "space", space_started_at=T0)
    for index, frame in enumerate(frames(audio)):
        packager.push(frame, T0 + 1.0 + index * FRAME_SECONDS)
    assert packager.sync()
    packager.end()
    replay = (tmp_path / "space" / "replay.m4a").read_bytes()

    lines = transcribe_replay(replay, vad=silero.stream(), transcriber=whisper, language="en")

    assert len(lines) == len(SAID), lines
    for text, line, (start, end) in zip(SAID, lines, placed, strict=True):
        assert word_error_rate(text, line.text) <= MAX_WER, line.text
        assert line.start == pytest.approx(start, abs=TIME_TOLERANCE)
        assert line.end == pytest.approx(end, abs=TIME_TOLERANCE)
        assert line.speaker == ""


def test_a_path_and_bytes_decode_alike_and_frames_are_whole(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path / "space", space_started_at=T0)
    audio = np.concatenate([silence(0.5), np.full(SAMPLE_RATE // 2, 8000, dtype=np.int16)])
    for index, frame in enumerate(frames(audio)):
        packager.push(frame, T0 + index * FRAME_SECONDS)
    packager.end()
    path = tmp_path / "space" / "replay.m4a"
    from_path = list(replay_frames(path))
    from_bytes = list(replay_frames(path.read_bytes()))
    assert len(from_path) == len(from_bytes) >= audio.size // 960
    assert all(f.shape == (960,) and f.dtype == np.int16 for f in from_path)
    assert all(np.array_equal(a, b) for a, b in zip(from_path, from_bytes, strict=True))


def test_bytes_that_are_not_audio_raise() -> None:
    with pytest.raises(av.FFmpegError):
        list(replay_frames(b"this is not an mp4 file"))


def test_a_transcription_told_to_stop_stops(
    whisper: WhisperTranscriber, silero: SileroModel, tmp_path: Path
) -> None:
    packager = HlsPackager(tmp_path / "space", space_started_at=T0)
    for index, frame in enumerate(frames(silence(1.0))):
        packager.push(frame, T0 + index * FRAME_SECONDS)
    packager.end()
    with pytest.raises(TranscriptionStopped):
        transcribe_replay(
            tmp_path / "space" / "replay.m4a",
            vad=silero.stream(),
            transcriber=whisper,
            language="en",
            stopped=lambda: True,
        )
