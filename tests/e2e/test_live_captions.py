"""Issue 14, live captions, end to end: `majlis serve` with the English model (its media in
the worker process), `majlis speak` sending espeak-ng sentences over WebRTC, and the words
read back while the space is live, as a listener's player reads them: the multivariant
playlist, its WebVTT subtitles rendition, and the state document. Without a model, the
same server says captions are unavailable and serves everything else as before."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from majlis.media.captions.wer import word_error_rate

from .harness import Api, Server, running_server, wait_line
from .test_transcripts import MODEL_PACKAGE, SAID, parse_vtt, speak_file, speech_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MAX_WER = 0.4
SEGMENT = re.compile(r"^c[0-9]+\.vtt$", re.MULTILINE)
AFTER_SPEECH_S = 8.0  # the captioner's lag, and a segment or two, after the last word


def playback_base(api: Api, space_id: str) -> str:
    """The directory of the listener's playback URL (its token in the path)."""
    joined = api.ok("host", "POST", f"/api/v1/spaces/{space_id}/join", {})
    url = str(joined["playback_url"])
    assert url.endswith("/index.m3u8"), url
    return url.rsplit("/", 1)[0]


class Reader:
    """A player's reading of the subtitles rendition: every listed segment, once."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cues: dict[str, list[tuple[float, float, str]]] = {}

    def poll(self) -> None:
        answer = httpx.get(f"{self.base}/captions.m3u8")
        if answer.status_code == 404:
            return
        assert answer.status_code == 200, answer.text
        for name in SEGMENT.findall(answer.text):
            if name not in self.cues:
                segment = httpx.get(f"{self.base}/{name}")
                assert segment.status_code == 200, segment.text
                assert "X-TIMESTAMP-MAP=MPEGTS:" in segment.text
                self.cues[name] = parse_vtt(segment.text)

    @property
    def text(self) -> str:
        ordered = sorted(self.cues.items(), key=lambda item: int(item[0][1:-4]))
        return " ".join(re.sub(r"<v [^>]*>", "", cue[2]) for _, cues in ordered for cue in cues)

    @property
    def starts(self) -> list[float]:
        return [cue[0] for cues in self.cues.values() for cue in cues]


def wait_playlist(base: str, timeout: float = 20.0) -> None:
    """Until the space's media has started and its audio playlist is served."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base}/index.m3u8").status_code != 200:
        assert time.monotonic() < deadline, "the audio playlist never appeared"
        time.sleep(0.2)


def state(server: Server, space_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/v1/spaces/{space_id}/state")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def test_spoken_words_appear_in_the_live_subtitles_rendition(tmp_path: Path) -> None:
    wav, length = speech_file(tmp_path)
    with running_server(tmp_path / "data", caption_model=MODEL_PACKAGE) as server:
        api = Api(server)
        host_id = api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Evening talk"})["id"]
        base = playback_base(api, sid)
        started_at = float(state(server, sid)["space"]["started_at"])
        reader = Reader(base)
        lines: list[dict[str, Any]] = []

        speaker = speak_file(server, sid, wav, length + 1.0)
        try:
            wait_line(speaker, "speaking")
            speaking_from = time.time()
            deadline = time.monotonic() + length + AFTER_SPEECH_S
            while time.monotonic() < deadline:
                reader.poll()
                document = state(server, sid)
                assert document["captions"] == "on"
                lines = document["caption_lines"] or lines
                time.sleep(0.5)
            speaker.wait(30)
        finally:
            if speaker.poll() is None:
                speaker.kill()

        assert word_error_rate(" ".join(SAID), reader.text) <= MAX_WER, reader.text
        # Cues are on the audio's media time (seconds since the space started).
        for start in reader.starts:
            assert speaking_from - started_at - 1.0 <= start <= time.time() - started_at
        assert lines and all(line["speaker"] == host_id for line in lines), lines

        multivariant = httpx.get(f"{base}/main.m3u8")
        assert multivariant.status_code == 200
        assert 'TYPE=SUBTITLES,GROUP-ID="captions"' in multivariant.text
        assert multivariant.text.endswith('SUBTITLES="captions"\nindex.m3u8\n')


def test_without_a_model_captions_are_unavailable_and_listening_still_works(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path / "data") as server:
        api = Api(server)
        api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "No captions"})["id"]
        base = playback_base(api, sid)
        wait_playlist(base)
        document = state(server, sid)
        assert document["captions"] == "unavailable"
        assert document["caption_lines"] == []
        multivariant = httpx.get(f"{base}/main.m3u8")
        assert multivariant.status_code == 200, multivariant.text
        assert "SUBTITLES" not in multivariant.text
        assert multivariant.text.endswith("\nindex.m3u8\n")
        assert httpx.get(f"{base}/captions.m3u8").status_code == 404
        transcript = httpx.get(f"{server.url}/api/v1/spaces/{sid}/transcript")
        assert transcript.status_code == 409 and transcript.json()["error"] == "captions_off"
