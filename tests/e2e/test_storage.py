"""Recordings in an S3-compatible store, with a whole `majlis serve` (moto as the store):
the replay outlives the local directory; a wrong store stops the start-up in one line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from majlis.media.recording.storage import StorageSettings
from s3_support import storage_config

from .harness import MAJLIS, Api, running_server, speak, wait_line, wait_replay
from .signal_tools import decode, tone_db

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TONE = 440.0


def test_the_replay_is_served_from_the_bucket_once_the_disk_lost_it(
    s3_settings: StorageSettings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with running_server(data, **storage_config(s3_settings)) as server:
        api = Api(server)
        api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "s3"})["id"]
        speaker = speak(server, sid, "host", TONE, 5)
        wait_line(speaker, "connected")
        assert speaker.wait(30) == 0
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        wait_replay(api, sid)
        api.close()
    shutil.rmtree(data / "spaces" / sid)  # the disk that recorded it is gone

    with running_server(data, **storage_config(s3_settings)) as server:
        api = Api(server)
        replay = api.http.get(f"/hls/{sid}/replay.m4a")
        assert replay.status_code == 200, replay.text
        audio = decode(replay.content)
        assert len(audio) > 3 * 48000
        assert tone_db(audio[48000:-48000], TONE) > -30.0
        assert "#EXT-X-ENDLIST" in api.http.get(f"/hls/{sid}/index.m3u8").text
        api.close()
    assert not (data / "spaces" / sid / "replay.m4a").exists()  # streamed, not copied


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"storage_url": "s3://no-such-bucket-anywhere/x"}, "NoSuchBucket"),
        ({"storage_endpoint": "http://127.0.0.1:1"}, "error sending request"),
    ],
)
def test_a_wrong_store_stops_the_start_in_one_line(
    s3_settings: StorageSettings, tmp_path: Path, change: dict[str, str], reason: str
) -> None:
    env = {f"MAJLIS_{k.upper()}": v for k, v in {**storage_config(s3_settings), **change}.items()}
    done = subprocess.run(
        [MAJLIS, "serve", "--port", "0", "--data-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("majlis: cannot reach storage_url") and reason in lines[0]
    assert "Traceback" not in done.stderr
