"""Audio constants shared by the whole media plane.

Internally every stream is mono, 48 kHz, signed 16-bit, cut into 20 ms frames: Opus runs at
48 kHz and browsers send 20 ms packets (ingest decodes them to mono; other packet sizes are
regrouped), and 20 ms is the mixer's tick.
"""

from __future__ import annotations

__all__ = ["FRAME_SAMPLES", "FRAME_SECONDS", "FULL_SCALE", "SAMPLE_RATE"]

SAMPLE_RATE = 48_000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 960
FULL_SCALE = 32767.0
