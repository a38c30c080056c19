"""The web app in a real headless Chromium: what hosts and listeners do, page by page.

Each test starts its own server, runs one scenario of flows.mjs (playwright-core driving
/usr/bin/chromium) and checks its JSON report. Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.harness import PASSWORD, Api, running_server, wait_line, wait_replay
from e2e.test_live_captions import english_and_arabic
from e2e.test_transcripts import MODEL_PACKAGE, SAID, speak_file, speech_file
from edge.conftest import SECRET, Edge, free_port, require_varnish
from majlis.media.captions.wer import normalize, word_error_rate

from .harness import Server, explain, run_scenario

pytestmark = pytest.mark.slow


def checked(report: dict[str, object]) -> dict[str, bool]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["name"]: c["ok"] for c in checks}


def assert_ran(report: dict[str, object], *expected: str) -> None:
    """Each named step of the scenario ran and passed."""
    names = checked(report)
    for name in expected:
        assert names.get(name), f"{name!r} did not run\n{explain(report)}"


def test_host_and_listener_flow(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    # An audience sample a second, so that this short space has a curve to draw.
    server = start_server(MAJLIS_AUDIENCE_SAMPLE_S="1")
    report = run_scenario(browser_tools, "main", server.url, tones[440])
    assert report["ok"], explain(report)
    assert_ran(
        report,
        "host creates a live space with an Arabic title",
        "studio shows the space and its controls",
        "listener joins with one click and is counted",
        "reactions: send, and everyone sees the tallies",
        "host sees the request (events socket) and approves",
        "listener view switches to the microphone without reload: connecting",
        "microphone outcome is shown clearly",
        "host mutes the speaker; both views show it",
        "host demotes; listener is back in the audience, listening",
        "host edits the description; the listener page shows it",
        "host ends the space after confirming",
        "the ended studio offers nothing live: no microphone, no invitations, nobody speaking",
        "a first tap on log in counts while the page still asks who is signed in",
        "replay page renders: title, peak listeners, download, player",
        "host sets a picture from the header; a text file is refused with a reason",
        "share copies the space link where there is no share sheet",
        "host deletes the replay after confirming; it is gone",
        "replay page draws the audience: listeners over time",
        "with captions off the replay page shows no transcript section",
    )


def test_a_ban_is_told_to_the_banned_speaker_alone(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    # Heartbeats every 2 s, so a banned listener hears of it soon.
    server = start_server(MAJLIS_PLAYBACK_TTL="6")
    report = run_scenario(browser_tools, "removal", server.url, tones[440])
    assert report["ok"], explain(report)
    assert_ran(
        report,
        "the host bans them with a reason from the studio",
        "the banned speaker alone is told what was done and why",
        "the statement is theirs at /notices, and the ban is in the audit log",
        "a banned listener reads why when the heartbeat is refused",
    )


def make_moderator(server: Server, name: str) -> None:
    """An account that is a site moderator, made with the CLI on the server's database (the
    first grant cannot come through the API)."""
    majlis = str(Path(sys.executable).with_name("majlis"))
    for command in (
        ["user", "create", name, "--password", "correct horse battery"],
        ["moderate", "grant", name],
    ):
        done = subprocess.run(
            [majlis, *command, "--data-dir", str(server.data)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_reports_decisions_statements_and_appeals_in_the_web_app(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    server = start_server()
    for name in ("mod_one", "mod_two"):
        make_moderator(server, name)
    report = run_scenario(browser_tools, "moderation", server.url, tones[440])
    assert report["ok"], explain(report)
    assert_ran(
        report,
        "a visitor who is not logged in reports the space",
        "a moderator sees it in the queue and suspends the host with a reason",
        "the operator page lists the live space with its listeners",
        "the suspended host reads why at Notices and appeals",
        "the moderator who decided cannot review the appeal; another one reverses it",
        "the host reads that the appeal was accepted and can act again",
    )


def test_the_web_app_in_arabic_and_the_language_switch(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    server = start_server()
    make_moderator(server, "mod_ar")
    report = run_scenario(browser_tools, "languages", server.url, tones[440])
    assert report["ok"], explain(report)
    assert_ran(
        report,
        "an Arabic browser gets every public page in Arabic, right to left",
        "a server error is shown in Arabic, from its code",
        "a host in Arabic creates a space and runs its studio",
        "a listener in Arabic hears the space, with counts in Arabic digits",
        "the replay, notices, moderation and operator pages are in Arabic",
        "the language switch changes the page and remembers the choice",
    )


def test_private_spaces_and_spaces_not_recorded_in_the_web_app(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    server = start_server()
    report = run_scenario(browser_tools, "privacy", server.url, tones[440])
    assert report["ok"], explain(report)
    assert_ran(
        report,
        "the host creates a private space and adds a guest in the studio",
        "a guest listens; someone not invited is told why",
        "after the end the guest plays the replay through its tokened URL",
        "a space without a recording says so on its replay page",
    )


def test_the_header_badge_counts_a_reminder_delivered(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    server = start_server()
    report = run_scenario(browser_tools, "reminders", server.url, tones[440])
    assert report["ok"], explain(report)
    assert_ran(
        report,
        "the header shows no badge before anything happened",
        "once the host starts the space the badge counts one unread",
        "the list says it is live, links to it, and opening it marks it read",
    )


def test_waiting_room_moves_on_by_itself(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    """The host speaks a 440 Hz tone; a listener queued in the waiting room is admitted by
    itself and its player plays that tone."""
    server = start_server(MAJLIS_ADMISSION_RATE="0.5", MAJLIS_ADMISSION_BURST="1")
    report = run_scenario(browser_tools, "waiting", server.url, tones[440])
    assert report["ok"], f"{explain(report)}\n{report.get('notes')}"
    assert_ran(
        report,
        "a later listener sees the waiting room with position and wait",
        "queued listeners move on by themselves when admitted",
        "the listener admitted from the queue plays the host (440 Hz)",
    )


@pytest.mark.realtime
def test_audio_reaches_listeners_speakers_and_replay(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    """A 440 Hz fake microphone at the host, 660 Hz at a speaker: the listener's hls.js
    player, the speaker's and host's mix-minus, a second listener (both tones, then 440 Hz
    alone once the host mutes the speaker) and the replay each carry the right tones.
    Alone on the machine: the replay is judged for gaps, and three browsers' microphones
    and players starved by the other test process made one (0.75 s, in CI)."""
    server = start_server()
    report = run_scenario(browser_tools, "audio", server.url, tones[440], tones[660], timeout=150)
    notes = report.get("notes", {})
    assert isinstance(notes, dict)
    if notes.get("skip"):
        pytest.xfail(str(notes["skip"]))
    assert report["ok"], f"{explain(report)}\n{notes}"
    print(f"\naudio scenario measurements: {json.dumps(notes, default=str)[:3000]}")
    assert_ran(
        report,
        "the microphone sends 40 ms packets, as the answer asks (a=ptime:40)",
        "listener hears the host tone through hls.js",
        "speaker is approved and hears the host in the mix-minus, not themself",
        "second listener hears both the host (440 Hz) and the speaker (660 Hz)",
        "host mutes the speaker; the 660 Hz tone stops for the second listener",
        "replay: host alone, both voices, then the host alone after the mute",
    )


@pytest.mark.realtime
def test_listening_through_the_edge(
    browser_tools: str, start_server: Callable[..., Server], tones: dict[int, Path]
) -> None:
    """Chromium plays the host's 440 Hz tone through `majlis edge` (nginx + Varnish): with
    hls.js every HLS request goes to the edge with a playback token in its path and a token
    renewed by the heartbeat (playback_ttl 6 s here) is used at once; the default player
    plays the edge's listener stream, which ends with each 5 s expiry window and goes on
    with the renewed token without a gap, and falls back to segment streams at once where
    the edge has none; ?player=segments streams whole segments."""
    require_varnish()
    port = free_port()
    edge_url = f"http://127.0.0.1:{port}"
    secret = {"MAJLIS_SECRET_KEY": SECRET}
    server = start_server(MAJLIS_EDGE_URL=edge_url, MAJLIS_PLAYBACK_TTL="6", **secret)
    workdir = Path(tempfile.mkdtemp(prefix="majlis-edge-web-"))
    windows = ("--stream-window", "5", "--stream-horizon", "5")
    edge = Edge(server.url, port, workdir, {**os.environ, **secret}, windows)
    try:
        edge.start()
        report = run_scenario(
            browser_tools, "edge", server.url, tones[440], timeout=120,
            env={"MAJLIS_TEST_EDGE": edge_url},
        )  # fmt: skip
    finally:
        edge.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert report["ok"], f"{explain(report)}\n{report.get('notes')}"
    print(f"\nedge scenario: {json.dumps(report.get('notes'), default=str)[:1500]}")
    assert_ran(
        report,
        "listener hears the host tone through the edge with hls.js",
        "every HLS request went to the edge, with a token in the path",
        "once listening, the state document comes from the edge",
        "the renewed token is used at once and playback goes on",
        "the default player plays the edge's listener stream",
        "the listener stream ends with its window and goes on with the renewed token",
        "a stream the edge does not have falls back to segment streams at once",
        "?player=segments streams whole segments through the edge",
    )


@pytest.mark.timeout(240)
def test_live_captions_in_the_listener_page_and_the_hosts_switch(
    browser_tools: str, tmp_path: Path
) -> None:
    """The host speaks espeak-ng sentences (over and over) in a space on a server with the
    English caption model: a listener's page shows live captions with a toggle, hls.js
    playing main.m3u8 shows the subtitles rendition's cues at the audio's position, the
    studio tells the host they are on and turns them off, and the listener's page says so.
    A second space, in Arabic, which that model lacks: its listener's page and studio say
    captions are unavailable for its language instead of showing an empty box."""
    # Long enough to outlast the scenario on a busy machine (hls.js joins last, and needs
    # words still being said); the speaker is stopped when the scenario ends.
    wav, length = speech_file(tmp_path, repeat=12)
    with running_server(tmp_path / "data", caption_model=MODEL_PACKAGE) as server:
        api = Api(server)
        sid, arabic_sid = english_and_arabic(api, "Live captions")
        api.close()
        speaker = speak_file(server, sid, wav, length + 1.0)
        try:
            wait_line(speaker, "speaking")
            env = {
                "MAJLIS_TEST_SPACE": sid,
                "MAJLIS_TEST_ARABIC_SPACE": arabic_sid,
                "MAJLIS_TEST_HOST": "host",
                "MAJLIS_TEST_PASSWORD": PASSWORD,
            }
            report = run_scenario(browser_tools, "captions", server.url, timeout=150, env=env)
        finally:
            speaker.kill()
    assert report["ok"], f"{explain(report)}\n{report.get('notes')}"
    notes = report["notes"]
    assert isinstance(notes, dict)
    heard = set(normalize(str(notes["heard"])))
    said = set(normalize(" ".join(SAID)))
    assert len(heard & said) >= 5, notes["heard"]
    assert notes["dirs"] == ["ltr"], notes  # English; Arabic is right to left (captions.test.mjs)


def test_replay_transcript(browser_tools: str, tmp_path: Path) -> None:
    """Speech (espeak-ng) in a space on a server with the English caption model: once the
    space ends its replay page says it is being transcribed, then lists what was said; a
    line plays the recording from its start and is marked as the one being heard."""
    wav, length = speech_file(tmp_path)
    with running_server(tmp_path / "data", caption_model=MODEL_PACKAGE) as server:
        api = Api(server)
        api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Community evening"})["id"]
        speaker = speak_file(server, sid, wav, length + 1.0)
        try:
            wait_line(speaker, "speaking")
            speaker.wait(length + 30)
        finally:
            if speaker.poll() is None:
                speaker.kill()
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        wait_replay(api, sid)
        api.close()
        env = {"MAJLIS_TEST_SPACE": sid}
        report = run_scenario(browser_tools, "transcript", server.url, timeout=150, env=env)
    assert report["ok"], f"{explain(report)}\n{report.get('notes')}"
    print(f"\ntranscript scenario:\n{explain(report)}")
    notes = report["notes"]
    assert isinstance(notes, dict)
    assert word_error_rate(" ".join(SAID), str(notes["heard"])) <= 0.5, notes["heard"]
    assert all(line["dir"] == "auto" for line in notes["lines"]), notes["lines"]
