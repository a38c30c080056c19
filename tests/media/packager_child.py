"""Run a packager in its own process, pushing a tone in real time until killed.

    python packager_child.py DIRECTORY SPACE_STARTED_AT FREQUENCY

The crash-resume test SIGKILLs this process: no close(), no end(), no flush.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from majlis.media.hls.packager import HlsPackager


def main() -> None:
    directory = Path(sys.argv[1])
    space_started_at = float(sys.argv[2])
    frequency = float(sys.argv[3])
    packager = HlsPackager(directory, space_started_at=space_started_at)
    print("ready", flush=True)
    start = time.monotonic()
    wall_start = time.time()
    n = np.arange(FRAME_SAMPLES)
    for index in range(1_000_000):
        t = (index * FRAME_SAMPLES + n) / SAMPLE_RATE
        frame = np.round(16383 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
        packager.push(frame, wall_start + index * FRAME_SECONDS)
        delay = start + (index + 1) * FRAME_SECONDS - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":
    main()
