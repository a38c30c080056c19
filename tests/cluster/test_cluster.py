"""Issue 12: one space across many machines. Two media nodes and two control-plane
workers on Redis and PostgreSQL: speakers through different workers hear each other, a
listener through either hears both, there is one recording, and a node killed with
SIGKILL hands its space to the other."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import m3u8
import numpy as np
import pytest
import redis

from e2e.harness import MAJLIS, Api, record_live, speak, wait_line, wait_replay
from e2e.signal_tools import RATE, decode, longest_gap, read_wav, tone_db, tone_track
from e2e.test_security_restart import refused
from majlis.media.recording.storage import StorageSettings
from majlis.plane import StandBy, decode_command

from .conftest import CLUSTER_REDIS, cluster, events, next_event, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.scaled, pytest.mark.timeout(240)]

HOST_TONE, GUEST_TONE = 440.0, 660.0
TONE_RMS_DB = -23.0  # a -20 dBFS peak sine


@pytest.mark.realtime
def test_speakers_on_two_workers_hear_each_other_in_one_recording(tmp_path: Path) -> None:
    with cluster(tmp_path) as running:
        a, b = (Api(w) for w in running.workers)
        a.register("host")
        guest = a.register("guest")
        b.login("guest")
        sid = a.ok("host", "POST", "/api/v1/spaces", {"title": "Across"})["id"]
        # Event sockets across workers: the host on A sees a request made on B, and the
        # guest's socket on B sees the approval made on A.
        with events(running.workers[0], sid, a.tokens["host"]) as host_events:
            b.ok("guest", "POST", f"/api/v1/spaces/{sid}/requests")
            asked = next_event(host_events, "speak_requested")
            assert asked["data"]["user_id"] == guest
            with events(running.workers[1], sid, b.tokens["guest"]) as guest_events:
                a.ok("host", "POST", f"/api/v1/spaces/{sid}/requests/{guest}/approve")
                for socket in (host_events, guest_events):
                    changed = next_event(socket, "role_changed")
                    assert (changed["data"]["user_id"], changed["data"]["role"]) == (
                        guest,
                        "speaker",
                    )

        host_mix, guest_mix = tmp_path / "host-mix.wav", tmp_path / "guest-mix.wav"
        worker_a, worker_b = running.workers
        host = speak(worker_a, sid, "host", HOST_TONE, 14, "--record-mix", str(host_mix))
        guest_speaker = speak(
            worker_b, sid, "guest", GUEST_TONE, 14, "--record-mix", str(guest_mix)
        )
        wait_line(host, "connected")
        wait_line(guest_speaker, "connected")
        time.sleep(3.0)
        owner = running.owner(sid)  # exactly one node runs it

        # A listener through worker B (ffmpeg) hears both speakers.
        joined = b.ok("guest", "POST", f"/api/v1/spaces/{sid}/join", {})
        assert joined["playback_url"].startswith(worker_b.url)
        heard_path = tmp_path / "listener.wav"
        record_live(joined["playback_url"], heard_path, 5, RATE)
        state = a.ok("host", "GET", f"/api/v1/spaces/{sid}/state")
        assert all(s["speaking"] for s in state["speakers"]), state["speakers"]
        assert running.owner(sid).url == owner.url
        assert host.wait(30) == 0 and guest_speaker.wait(30) == 0
        a.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        playlist_text = wait_replay(b, sid)
        replay = b.http.get(f"/hls/{sid}/replay.m4a")
        assert replay.status_code == 200
        a.close()
        b.close()

    heard = read_wav(heard_path)
    heard = heard[int(np.argmax(np.abs(heard) > 0.01)) :]
    assert len(heard) >= 3.0 * RATE
    for tone in (HOST_TONE, GUEST_TONE):
        assert abs(tone_db(heard, tone) - TONE_RMS_DB) < 2.0, f"{tone} Hz through worker B"
    assert longest_gap(heard) <= 0.040

    # Mix-minus across workers: each hears the other and not themself.
    for path, own, other in ((host_mix, HOST_TONE, GUEST_TONE), (guest_mix, GUEST_TONE, HOST_TONE)):
        mix = read_wav(path)[int(2 * RATE) : int(7 * RATE)]
        assert abs(tone_db(mix, other) - TONE_RMS_DB) < 3.0, path.name
        assert tone_db(mix, own) < tone_db(mix, other) - 30.0, path.name

    # One recording, from one node's one life, holding both tones.
    assert "#EXT-X-DISCONTINUITY" not in playlist_text
    assert [d.name for d in (running.data_dir / "spaces").iterdir()] == [sid]
    audio = decode(replay.content)
    both = audio[int(5 * RATE) : int(10 * RATE)]
    for tone in (HOST_TONE, GUEST_TONE):
        assert abs(tone_db(both, tone) - TONE_RMS_DB) < 3.0, f"{tone} Hz in the replay"


def test_a_killed_node_hands_its_space_to_the_other(
    tmp_path: Path, s3_settings: StorageSettings
) -> None:
    """Machines apart: every process has its own data directory and the recording lives
    in the bucket, so the node that takes over restores it from there."""
    with cluster(tmp_path, store=s3_settings) as running:
        a, b = (Api(w) for w in running.workers)
        a.register("host")
        b.login("host")
        sid = a.ok("host", "POST", "/api/v1/spaces", {"title": "Failover"})["id"]
        speaker = speak(running.workers[0], sid, "host", HOST_TONE, 90)
        try:
            wait_line(speaker, "connected")
            time.sleep(6.0)
            url = b.ok("host", "POST", f"/api/v1/spaces/{sid}/join", {})["playback_url"]
            kept = listed_through(b, url)
            assert len(kept) >= 2
            # A listener (ffmpeg) through worker B plays on through the failover.
            heard = tmp_path / "listener.wav"
            listening = ThreadPoolExecutor(1).submit(record_live, url, heard, 14, RATE)
            time.sleep(2.0)
            owner = running.owner(sid)
            owner.kill9()
            killed = time.monotonic()

            def resumed() -> bool:
                answer = b.http.get(url)
                if answer.status_code != 200:
                    return False
                listed = m3u8.loads(answer.text)
                return any(s.discontinuity for s in listed.segments)

            back_after = wait_for(resumed, 30)
            # The speaker finds the space on the other node by itself.
            wait_line(speaker, "connected again", timeout=30)
            spoke_again = time.monotonic() - killed
            time.sleep(4.0)
            survivor = running.owner(sid)
            assert survivor.url != owner.url
            listening.result(timeout=60)
        finally:
            speaker.terminate()
            speaker.wait(10)
        a.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        final_text = wait_replay(b, sid)
        after_end = {uri: b.http.get(f"/hls/{sid}/{uri}").content for uri in kept}
        replay = b.http.get(f"/hls/{sid}/replay.m4a").content
        a.close()
        b.close()

    print(f"listed again after {back_after:.1f} s, speaker back after {spoke_again:.1f} s")
    final = m3u8.loads(final_text)
    uris = [s.uri for s in final.segments]
    for uri, data_bytes in kept.items():
        assert uri in uris, f"{uri} was listed before the kill and is gone"
        assert after_end[uri] == data_bytes, f"{uri} changed"
    # Media sequence numbers and names continue: nothing repeats.
    assert len(set(uris)) == len(uris)
    first_new = next(i for i, s in enumerate(final.segments) if s.discontinuity)
    audio = decode(replay)
    new_start = sum(s.duration for s in final.segments[:first_new])
    after = audio[int((new_start + 1.0) * RATE) : int((new_start + 3.0) * RATE)]
    assert abs(tone_db(after, HOST_TONE) - TONE_RMS_DB) < 3.0, "no tone after the failover"
    # ffmpeg's clock jumps over what was lost (the new life starts at its wall-clock
    # place), so its 14 s hold less audio; what matters is that it played to the end.
    played = read_wav(heard)
    assert len(played) >= 8 * RATE, f"the listener stopped after {len(played) / RATE:.1f} s"
    assert tone_db(played[-3 * RATE :], HOST_TONE) > TONE_RMS_DB - 6.0, "no tone at the end"
    print(f"failover: the listener played {len(played) / RATE:.1f} s of its 14")


def listed_through(api: Api, playlist_url: str) -> dict[str, bytes]:
    """Every segment a listener's playlist lists now, with its bytes, over HTTP."""
    listed = m3u8.loads(api.http.get(playlist_url).text)
    base = playlist_url.split("?")[0].rsplit("/", 1)[0]
    # the last entry may be the segment in progress: parts only, no URI yet
    done = [s.uri for s in listed.segments if s.uri is not None]
    return {uri: api.http.get(f"{base}/{uri}").content for uri in done}


@pytest.mark.realtime
def test_a_draining_node_hands_its_space_over(tmp_path: Path) -> None:
    """SIGTERM to the node running a space: it asks the speaker to move, and the speaker
    connects to the other node before leaving this one; then the node closes the recording
    (not ends it) and lets go of the lease, and the other node, which has mixed the
    speaker all along, opens it where it was closed. No audio falls between the two."""
    with cluster(tmp_path) as running:
        api = Api(running.workers[0])
        api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Drain"})["id"]
        speaker = speak(running.workers[0], sid, "host", HOST_TONE, 60)
        heard = tmp_path / "listener.wav"
        try:
            wait_line(speaker, "connected")
            time.sleep(4.0)
            # A listener through the other worker plays on through the handover.
            listener = Api(running.workers[1])
            listener.register("listener")
            url = listener.ok("listener", "POST", f"/api/v1/spaces/{sid}/join", {})
            listening = ThreadPoolExecutor(1).submit(
                record_live, url["playback_url"], heard, 12, RATE
            )
            time.sleep(2.0)
            owner = running.owner(sid)
            owner.process.terminate()
            drained = time.monotonic()
            # uvicorn re-raises SIGTERM once it has shut down gracefully.
            assert owner.process.wait(30) in (0, -15)
            # Handed over, not timed out: sooner than a lease (3 s) plus a reconcile.
            moved = wait_for(lambda: running.owner_or_none(sid) is not None, 15)
            took = time.monotonic() - drained
            # The draining node left the StandBy the other ran: its speaker's playout
            # delay, so that both nodes played the speaker equally late.
            left = redis.Redis.from_url(CLUSTER_REDIS).get(f"majlis:v:handover-delays:{sid}")
            assert left is not None, "no playout delays were left for the handover"
            standby = decode_command(json.loads(left))
            assert isinstance(standby, StandBy) and standby.space_id == sid, standby
            assert list(standby.delays) == [api.ids["host"]], standby
            assert 0.0 < standby.delays[api.ids["host"]] <= 0.2, standby
            wait_line(speaker, "moved to another media node", timeout=30)
            time.sleep(3.0)
            listening.result(timeout=60)
            listener.close()
        finally:
            speaker.terminate()
            speaker.wait(10)
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        final = m3u8.loads(wait_replay(api, sid))
        replay = api.http.get(f"/hls/{sid}/replay.m4a").content
        api.close()
    print(f"drained: another node ran the space {took:.1f} s after SIGTERM ({moved:.1f} s wait)")
    assert took < 3.0, f"the space moved only after {took:.1f} s: the lease was not released"
    first_new = next(i for i, s in enumerate(final.segments) if s.discontinuity)
    audio = decode(replay)
    new_start = sum(s.duration for s in final.segments[:first_new])
    # The new node runs at once; the speaker is back once its reconnect finds it.
    level = tone_track(audio[int(new_start * RATE) :], HOST_TONE, 0.1, 0.05)
    assert np.count_nonzero(level > TONE_RMS_DB - 3.0) >= 30, "under 1.5 s of tone after"
    # The replay keeps the event's clock: audio lost would be silence there. What may be
    # silent is where the encoder restarts (a frame or two), not a reconnect's worth.
    around = audio[int((new_start - 1.0) * RATE) : int((new_start + 1.0) * RATE)]
    gap = longest_gap(around)
    print(f"drained: the longest silence around the handover is {gap * 1000:.0f} ms")
    assert gap < 0.08, f"{gap:.3f} s of silence where the space moved"
    # ffmpeg followed the playlist across the discontinuity and kept hearing the tone.
    played = read_wav(heard)
    assert len(played) >= 10 * RATE, f"the listener stopped after {len(played) / RATE:.1f} s"
    assert tone_db(played[-3 * RATE :], HOST_TONE) > TONE_RMS_DB - 6.0, "no tone at the end"
    print(f"drained: the listener's longest silence {longest_gap(played) * 1000:.0f} ms")


@pytest.mark.parametrize(
    ("env", "status", "says"),
    [
        ({}, 2, "a media node joins a cluster through a shared bus"),
        (
            {"MAJLIS_BUS_URL": "redis://127.0.0.1:1/0"},
            1,
            "cannot reach bus_url redis://127.0.0.1:1/0",
        ),
        ({"MAJLIS_BUS_URL": "redis://u:hunter2@127.0.0.1:1/0"}, 1, "redis://u:***@127.0.0.1:1/0"),
    ],
)
def test_a_node_without_a_reachable_shared_bus_says_so(
    tmp_path: Path, env: dict[str, str], status: int, says: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")}
    done = subprocess.run(
        [MAJLIS, "media", "--port", "0", "--data-dir", str(tmp_path)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == status
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "hunter2" not in done.stderr


def test_bans_and_logouts_outlive_a_redis_that_lost_its_data(tmp_path: Path) -> None:
    """Issue 13: Redis restarted empty (FLUSHDB stands in for it, as other suites share
    the server): the workers notice within seconds and put SQL's copy back."""
    with cluster(tmp_path, nodes=1) as running:  # a live space needs a node
        a, b = (Api(w) for w in running.workers)
        a.register("host")
        a.register("gone")
        troll = a.register("troll")
        b.tokens = a.tokens
        sid = a.ok("host", "POST", "/api/v1/spaces", {"title": "Remembered"})["id"]
        playlist = urlparse(
            b.ok("troll", "POST", f"/api/v1/spaces/{sid}/join", {})["playback_url"]
        ).path
        a.ok("gone", "POST", "/api/v1/auth/logout")
        a.ok("host", "POST", f"/api/v1/spaces/{sid}/participants/{troll}/remove", {"ban": True})
        refused(b, sid, playlist)

        redis.Redis.from_url(CLUSTER_REDIS).flushdb()

        def all_refused() -> bool:
            try:
                refused(b, sid, playlist)
                refused(a, sid, playlist)
            except AssertionError:
                return False
            return True

        print(f"refused again {wait_for(all_refused, 15):.1f} s after the flush")
        a.close()
        b.close()
