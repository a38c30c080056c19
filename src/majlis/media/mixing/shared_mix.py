"""The listener mix as Opus, encoded once for every speaker whose mix-minus equals it.

A speaker who is muted contributes nothing to any mix, so what they hear (everyone but
themself) is exactly what listeners hear. On a real stage most people are muted most of
the time; without sharing, each of them still costs an Opus encoder running on the
media loop. The mixer hands such speakers' tracks the listener row flagged "shared"; the
tracks ask SharedMix for each packet, and the first to ask encodes it.

Seams: a decoder follows the state of the encoder whose packets it gets, so switching
encoders mid-stream would click unless the states match. Joining the shared stream, a
track's own encoder has fed on the very same mix for a while first (the mixer shares only
after a speaker has been muted for SHARE_AFTER_TICKS), and a shared stream that was idle
takes over the joiner's state outright. Leaving it, the track's own encoder takes over
the shared encoder's state (libopus states may be copied), which is exact.
"""

from __future__ import annotations

from collections import OrderedDict

from majlis.media.audio import FRAME_SAMPLES
from majlis.media.formats.convert import Pcm
from majlis.media.formats.opus import OpusEncoder

__all__ = ["SHARE_AFTER_TICKS", "SharedMix"]

# 200 ms muted (own encoder fed the listener mix) before a speaker's mix-minus is shared.
SHARE_AFTER_TICKS = 10
# Packets kept for tracks that read a little behind the others.
_KEEP = 8


class SharedMix:
    """One per mixer, on the media loop. Packets must be asked for in tick order; each
    is encoded once, by whichever track asks first."""

    def __init__(self) -> None:
        self.encoder = OpusEncoder()
        self.encoded = 0  # packets encoded (for tests and metrics)
        self._recent: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._next_tick: int | None = None

    def packet(self, first_tick: int, samples: Pcm, joiner: OpusEncoder) -> bytes | None:
        """The shared packet for the ticks starting at `first_tick`, or None when it cannot
        be had (a track behind the stream asking for ticks it has passed, cut
        differently): that track then encodes the packet itself. `joiner` is the asking
        track's own encoder, whose state an idle stream continues from."""
        key = (first_tick, samples.size // FRAME_SAMPLES)
        cached = self._recent.get(key)
        if cached is not None:
            return cached
        if self._next_tick is not None and first_tick < self._next_tick:
            return None
        if self._next_tick != first_tick:
            # Nobody took the packets in between: nobody decodes this stream now but the
            # joiner, who then hears no seam at all.
            self.encoder.copy_state_from(joiner)
        data = self.encoder.encode_bytes(samples)
        self.encoded += 1
        self._next_tick = first_tick + key[1]
        self._recent[key] = data
        if len(self._recent) > _KEEP:
            self._recent.popitem(last=False)
        return data

    def hand_over(self, own: OpusEncoder) -> None:
        """A track leaves the shared stream: its own encoder continues the shared one."""
        own.copy_state_from(self.encoder)
