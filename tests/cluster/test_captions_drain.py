"""Issue 14 in a cluster of real processes (`majlis media` nodes with the English caption
model, `majlis serve` workers, PostgreSQL and Redis): a space whose host turned captions
off keeps them off when its node drains and another takes it over."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from e2e.harness import Api, Server
from e2e.test_transcripts import MODEL_PACKAGE
from majlis.media.captions.model import ModelNotFound, resolve_model
from media.captions.speech import missing

from .conftest import cluster, wait_for

pytestmark = pytest.mark.timeout(240)


def captioning(node: Server, space_id: str) -> bool:
    """Whether the node runs live captions for the space (its captioner's samples)."""
    text = httpx.get(f"{node.url}/metrics", timeout=5).text
    return re.search(rf'^majlis_captions_failed\{{space="{space_id}"\}}', text, re.M) is not None


def test_a_drained_space_keeps_the_hosts_captions_switch(tmp_path: Path) -> None:
    try:
        resolve_model(MODEL_PACKAGE)
    except ModelNotFound as exc:
        missing(str(exc))
    with cluster(tmp_path, caption_model=MODEL_PACKAGE) as running:
        api = Api(running.workers[0])
        api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Drain, captions off"})["id"]
        playlist = running.data_dir / "spaces" / sid / "captions.m3u8"
        wait_for(lambda: playlist.is_file(), 60)
        old = running.owner(sid)
        assert captioning(old, sid)

        api.ok("host", "PUT", f"/api/v1/spaces/{sid}/captions", {"on": False})
        wait_for(lambda: "#EXT-X-ENDLIST" in playlist.read_text(), 15)
        old.process.terminate()
        assert old.process.wait(30) in (0, -15)
        wait_for(lambda: running.owner_or_none(sid) is not None, 15)
        new = running.owner(sid)
        assert new is not old
        # Long enough for the new node to load its model and start captions, had it
        # started the space with captions on (a second or two here).
        time.sleep(5.0)
        assert not captioning(new, sid)
        assert "#EXT-X-ENDLIST" in playlist.read_text()  # no new rendition

        # The node can caption: the host's switch, on again, starts them there.
        api.ok("host", "PUT", f"/api/v1/spaces/{sid}/captions", {"on": True})
        wait_for(lambda: captioning(new, sid), 30)
        wait_for(lambda: "#EXT-X-ENDLIST" not in playlist.read_text(), 15)
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        api.close()
