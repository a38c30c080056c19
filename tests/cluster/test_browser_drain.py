"""The web app's microphone through a drain, in headless Chromium on a real cluster: the
node running the space gets SIGTERM, the studio page follows its 'move' to the other node
(a new peer connection before the old one is let go), never shows "reconnecting", and the
replay has no silence where the space moved."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import m3u8
import pytest

from e2e.harness import Api, wait_replay
from e2e.signal_tools import RATE, decode, longest_gap, tone_db
from web.harness import HERE as WEB
from web.harness import ROOT, write_tone
from web.harness import browser_tools as browser_tools  # the fixture, used by name

from .conftest import cluster, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.scaled, pytest.mark.timeout(240), pytest.mark.realtime]


def read_message(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            message: dict[str, object] = json.loads(line)
            return message
    raise AssertionError(
        f"drain.mjs ended early: {process.stderr.read() if process.stderr else ''}"
    )


def test_the_studio_moves_with_a_draining_node(browser_tools: str, tmp_path: Path) -> None:
    tone = write_tone(tmp_path / "tone.wav", 440.0)
    with cluster(tmp_path) as running:
        page = subprocess.Popen(
            [browser_tools, str(WEB / "drain.mjs"), running.workers[0].url, str(tone)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ready = read_message(page)
            sid = str(ready["ready"])
            time.sleep(3.0)
            owner = running.owner(sid)
            owner.process.terminate()
            assert owner.process.wait(30) in (0, -15)
            wait_for(lambda: running.owner_or_none(sid) is not None, 15)
            assert page.stdin is not None
            page.stdin.write("drained\n")
            page.stdin.flush()
            report = read_message(page)
        finally:
            page.kill()
            page.wait(10)
        api = Api(running.workers[0])
        api.login("drain_host")
        api.ok("drain_host", "POST", f"/api/v1/spaces/{sid}/end")
        final = m3u8.loads(wait_replay(api, sid))
        replay = api.http.get(f"/hls/{sid}/replay.m4a").content
        api.close()
    assert report.get("done"), report
    assert not report["errors"], report
    assert report["micNow"] == "connected", report
    assert "reconnecting" not in report["micStates"], report  # type: ignore[operator]
    peers = report["peers"]
    assert isinstance(peers, list) and len(peers) == 2 and peers[-1] == "connected", report
    first_new = next(i for i, s in enumerate(final.segments) if s.discontinuity)
    new_start = sum(s.duration for s in final.segments[:first_new])
    audio = decode(replay)
    after = audio[int(new_start * RATE) : int((new_start + 2.0) * RATE)]
    assert tone_db(after, 440.0) > -40.0, "no tone after the handover"
    around = audio[int((new_start - 1.0) * RATE) : int((new_start + 1.0) * RATE)]
    gap = longest_gap(around)
    print(f"browser drain: longest silence around the handover {gap * 1000:.0f} ms")
    assert gap < 0.08, f"{gap:.3f} s of silence where the space moved"
