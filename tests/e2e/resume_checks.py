"""What every crash-and-resume test checks: the recording's listed segments survive byte
for byte, a discontinuity follows them, and each side carries its own tone."""

from __future__ import annotations

from pathlib import Path

import m3u8

from .signal_tools import RATE, decode, tone_db


def listed_segments(space_dir: Path) -> dict[str, bytes]:
    """Every segment the playlist lists right now, with its bytes."""
    listed = m3u8.loads((space_dir / "index.m3u8").read_text())
    return {s.uri: (space_dir / s.uri).read_bytes() for s in listed.segments}


def check_resumed(
    space_dir: Path,
    kept: dict[str, bytes],
    final_text: str,
    replay: bytes,
    tones: tuple[float, float],
) -> m3u8.M3U8:
    """`tones`: the frequency spoken before the kill and the one after."""
    final = m3u8.loads(final_text)
    assert final.is_endlist
    uris = [s.uri for s in final.segments]
    for uri, data_bytes in kept.items():
        assert uri in uris, f"{uri} was listed before the kill and is gone"
        assert (space_dir / uri).read_bytes() == data_bytes, f"{uri} changed"
    first_new = next(i for i, s in enumerate(final.segments) if s.discontinuity)
    assert first_new >= len(kept), "discontinuity before the old segments end"
    assert "#EXT-X-DISCONTINUITY" in final_text

    before, after = tones
    audio = decode(replay)
    old_seconds = sum(s.duration for s in final.segments[:first_new])
    old_part = audio[int(1.0 * RATE) : int((old_seconds - 0.5) * RATE)]
    new_part = audio[int((old_seconds + 2.0) * RATE) :]
    assert tone_db(old_part, before) > -26 and tone_db(old_part, after) < -50
    assert tone_db(new_part, after) > -26 and tone_db(new_part, before) < -50
    return final
