"""HeldMix: a space's mix, held until its recording opens on this node.

A node taking a space over (media/rtc/control.py) runs the mixer at once, so that the
speakers who move here are heard, while the node handing the space over still writes the
recording. What is mixed meanwhile is held here with its capture times; once the recording
opens, it all goes to the packager, which keeps only what the other node did not record
(HlsPackager drops frames from before the end of what is listed).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.hls.packager import HlsPackager

__all__ = ["HeldMix"]

# A handover takes seconds; a standby that waits longer keeps only its newest minute.
# attach() gives it all to the packager at once: it stays under the packager's bound on
# what may wait (DEFAULT_MAX_BACKLOG_SECONDS), or its start would be recorded as silence.
MAX_HELD_SECONDS = 60.0


class HeldMix:
    """The mixer's `on_mix`: runs on the media loop, like attach()."""

    def __init__(self, max_seconds: float = MAX_HELD_SECONDS) -> None:
        frames = max(1, round(max_seconds * SAMPLE_RATE / FRAME_SAMPLES))
        self._held: deque[tuple[npt.NDArray[np.int16], float]] = deque(maxlen=frames)
        self._packager: HlsPackager | None = None

    @property
    def packager(self) -> HlsPackager | None:
        return self._packager

    @property
    def held(self) -> int:
        return len(self._held)

    def push(self, pcm: npt.NDArray[np.int16], capture_time: float) -> None:
        if self._packager is not None:
            self._packager.push(pcm, capture_time)
        else:
            self._held.append((pcm.copy(), capture_time))

    def attach(self, packager: HlsPackager) -> None:
        """From now on the mix goes to `packager`, starting with what was held."""
        while self._held:
            packager.push(*self._held.popleft())
        self._packager = packager
