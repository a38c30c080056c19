"""What every crash-and-resume test does around its kill: the host speaks 440 Hz into a new
space before it and 660 Hz after it, and then the checks: the recording's listed segments
survive byte for byte, a discontinuity follows them, and each side carries its own tone."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import m3u8

from .harness import Api, Server, speak, wait_line, wait_replay
from .signal_tools import RATE, decode, tone_db

BEFORE_HZ, AFTER_HZ = 440.0, 660.0


def speak_before_the_kill(
    server: Server, api: Api, title: str
) -> tuple[str, subprocess.Popen[str], dict[str, bytes]]:
    """The host (registered here) speaks into a new space for 6 s: (space id, the still
    speaking `majlis speak`, the segments listed by then, at least two)."""
    api.register("host")
    sid = api.ok("host", "POST", "/api/v1/spaces", {"title": title})["id"]
    speaker = speak(server, sid, "host", BEFORE_HZ, 60)
    wait_line(speaker, "connected")
    time.sleep(6.0)
    kept = listed_segments(server.data_dir / "spaces" / sid)
    assert len(kept) >= 2
    return sid, speaker, kept


def speak_after_the_kill_and_end(server: Server, api: Api, sid: str) -> tuple[str, bytes]:
    """The host speaks 6 s more and ends the space: (final playlist, replay bytes)."""
    after = speak(server, sid, "host", AFTER_HZ, 6)
    wait_line(after, "connected")
    assert after.wait(30) == 0
    api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
    final_text = wait_replay(api, sid)
    return final_text, api.http.get(f"/hls/{sid}/replay.m4a").content


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
