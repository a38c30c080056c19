"""Audio constants shared by the whole media plane.

Internally every stream is mono, 48 kHz, signed 16-bit, cut into 20 ms frames: aiortc's
Opus decoder delivers 48 kHz frames of 960 samples (as interleaved s16 stereo even from a
mono microphone, so ingest downmixes), and 20 ms is the mixer's tick.
"""

from __future__ import annotations

__all__ = ["FRAME_SAMPLES", "FRAME_SECONDS", "SAMPLE_RATE"]

SAMPLE_RATE = 48_000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 960
