"""Failover of a media node, measured: kill -9 the node running a space, again and again,
and see when the space's audio comes back and how much of it was lost.

A local cluster (PostgreSQL and Redis on this machine, two `majlis media` nodes, two
control-plane workers, one shared data directory) runs one space; `majlis speak` sends a
440 Hz tone into it through worker A. Each round kills the node that runs the space and
restarts it at once (as systemd would, with a new node id), then waits for the space to
settle again. At the end the space is ended and its replay decoded: every segment's
EXT-X-PROGRAM-DATE-TIME puts the tone back on the wall clock, so for each kill:

  heard_again_s   kill -> the first tone after it, at the origin (what a listener hears
                  next, plus their own playback delay)
  lost_s          the last tone before the kill -> the first tone after it
  listed_again_s  kill -> the playlist, read through worker B, lists the new node's audio

    .venv/bin/python bench/failover.py --kills 5 --out bench/results/failover.json
    .venv/bin/python bench/failover.py --kills 5 --signal term --spread 0 \
        --out bench/results/drain.json

It also places 20 spaces at once and reports how they spread over the two nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import m3u8
import numpy as np
import redis

MAJLIS = str(Path(sys.executable).with_name("majlis"))
PASSWORD = "bench-failover-1"
TONE = 440.0
WINDOW = 0.02  # seconds per tone decision


@dataclass
class Proc:
    url: str
    process: subprocess.Popen[str]


def start(command: str, data: Path, env: dict[str, str], port: int = 0) -> Proc:
    cmd = [MAJLIS, command, "--port", str(port), "--data-dir", str(data)]
    logs = os.environ.get("FAILOVER_LOGS")  # a directory: each process's log kept there
    err = open(Path(logs) / f"{command}-{time.time():.3f}.log", "w") if logs else None  # noqa: SIM115
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=err or subprocess.DEVNULL, text=True
    )
    line = process.stdout.readline() if process.stdout else ""
    found = re.search(r"http://[\d.]+:\d+", line)
    if not found:
        process.kill()
        raise SystemExit(f"majlis {command} did not start: {line!r}")
    return Proc(found.group(0), process)


def stop(proc: Proc) -> None:
    if proc.process.poll() is None:
        proc.process.terminate()
        try:
            proc.process.wait(30)
        except subprocess.TimeoutExpired:
            proc.process.kill()


@contextlib.contextmanager
def database(base_url: str) -> Iterator[str]:
    name = f"majlis_failover_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base_url.rpartition('/')[0]}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def spaces_on(node: Proc) -> int:
    try:
        text = httpx.get(f"{node.url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0
    found = re.search(r"^majlis_media_spaces (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=20)
        self.headers: dict[str, str] = {}

    def register(self, name: str) -> None:
        answer = self.http.post(
            "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
        )
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    def login(self, name: str) -> None:
        answer = self.http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['token']}"}

    def post(self, path: str, body: object = None) -> dict[str, object]:
        answer = self.http.post(path, json=body or {}, headers=self.headers)
        if answer.status_code >= 400:
            raise SystemExit(f"POST {path}: {answer.status_code} {answer.text}")
        return dict(answer.json()) if answer.content else {}


def discontinuities(playlist_text: str) -> int:
    return playlist_text.count("#EXT-X-DISCONTINUITY\n")


def relisted(client: Client, url: str, seen: int) -> Callable[[], bool]:
    """True once the live playlist has more discontinuities than `seen`: a new node's
    audio is listed."""
    return lambda: discontinuities(client.http.get(url).text) > seen


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.1) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(step)
    return None


def tone_times(replay: bytes, playlist: m3u8.M3U8) -> list[tuple[float, int]]:
    """(wall-clock time, segment index) of every WINDOW of the replay that holds the tone."""
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "-", "-f", "f32le", "-ac", "1", "-ar", "48000", "-"],
        input=replay,
        capture_output=True,
        check=True,
    ).stdout
    audio = np.frombuffer(pcm, dtype=np.float32)
    rate, hop = 48000, int(48000 * WINDOW)
    times = []
    for index, (segment, position) in enumerate(
        zip(playlist.segments, segment_positions(playlist, len(audio) / rate), strict=True)
    ):
        start_wall = segment.current_program_date_time.timestamp()
        first = int(position * rate)
        count = int(segment.duration / WINDOW)
        for i in range(count):
            chunk = audio[first + i * hop : first + (i + 1) * hop]
            if len(chunk) < hop:
                break
            spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk))))
            freqs = np.fft.rfftfreq(len(chunk), 1 / rate)
            band = spectrum[(freqs > TONE - 30) & (freqs < TONE + 30)].max()
            # A -20 dBFS peak sine under a Hann window peaks at 0.1 * N / 4; count the
            # window as "tone" down to 20 dB below that.
            if band > 0.1 * len(chunk) / 4 / 10:
                times.append((start_wall + i * WINDOW, index))
    return times


def segment_positions(playlist: m3u8.M3U8, replay_seconds: float) -> list[float]:
    """Where each segment starts in the replay. The replay keeps the event's clock: the
    time between two lives is silence in whole AAC frames; the encoder's priming at the
    start is cut, which the replay's length tells."""
    frame = 1024 / 48000
    starts, position = [], 0.0
    for before, segment in zip([None, *playlist.segments], playlist.segments, strict=False):
        if before is not None and segment.discontinuity:
            ended = before.current_program_date_time.timestamp() + before.duration
            gap = segment.current_program_date_time.timestamp() - ended
            position += max(0, round(gap / frame)) * frame
        starts.append(position)
        position += segment.duration
    lead_in = replay_seconds - position
    return [start + lead_in for start in starts]


def spread(workers: list[Proc], nodes: list[Proc], count: int) -> list[int]:
    client = Client(workers[0].url)
    client.register(f"spread{uuid.uuid4().hex[:6]}")
    ids = [str(client.post("/api/v1/spaces", {"title": f"s{i}"})["id"]) for i in range(count)]
    wait_until(lambda: sum(spaces_on(n) for n in nodes) >= count, 30)
    counts = [spaces_on(n) for n in nodes]
    for space_id in ids:
        client.post(f"/api/v1/spaces/{space_id}/end")
    wait_until(lambda: sum(spaces_on(n) for n in nodes) == 0, 30)
    return counts


def run(args: argparse.Namespace) -> dict[str, object]:
    redis.Redis.from_url(args.redis).flushdb()
    data = Path(tempfile.mkdtemp(prefix="majlis-failover-")) / "data"
    with database(args.postgres) as db:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")},
            "MAJLIS_BUS_URL": args.redis,
            "MAJLIS_DATABASE_URL": db,
            "MAJLIS_SECRET_KEY": "failover-bench-" + "ab" * 24,
            "MAJLIS_PASSWORD": PASSWORD,
            "MAJLIS_LEASE_SECONDS": str(args.lease),
            # Placing 20 spaces at once is one user's burst of writes.
            "MAJLIS_WRITE_RATE_USER": "1000",
            "MAJLIS_WRITE_BURST_USER": "1000",
        }
        nodes = [start("media", data, env) for _ in range(2)]
        workers = [start("serve", data, {**env, "MAJLIS_MEDIA": "false"}) for _ in range(2)]
        speaker: subprocess.Popen[str] | None = None
        try:
            counts = spread(workers, nodes, args.spread) if args.spread else []
            host, listener = Client(workers[0].url), Client(workers[1].url)
            host.register("host")
            listener.login("host")
            sid = str(host.post("/api/v1/spaces", {"title": "failover"})["id"])
            speaker = subprocess.Popen(
                [
                    MAJLIS,
                    "speak",
                    sid,
                    "--server",
                    workers[0].url,
                    "--user",
                    "host",
                    "--tone",
                    str(TONE),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            url = str(listener.post(f"/api/v1/spaces/{sid}/join")["playback_url"])
            kills: list[dict[str, float | None]] = []
            time.sleep(args.settle)
            for round_ in range(args.kills):
                owner = next((n for n in nodes if spaces_on(n) > 0), None)
                if owner is None:
                    raise SystemExit("no node runs the space")
                before = discontinuities(listener.http.get(url).text)
                killed_at = time.time()
                if args.signal == "term":
                    owner.process.terminate()  # a drain: the node hands its space over
                    owner.process.wait(30)
                else:
                    owner.process.kill()
                    owner.process.wait(10)
                nodes[nodes.index(owner)] = start("media", data, env)
                listed = wait_until(relisted(listener, url, before), 30)
                kills.append({"killed_at": killed_at, "listed_again_s": listed})
                print(f"kill {round_ + 1}: listed again after {listed} s", flush=True)
                time.sleep(args.settle)
            speaker.terminate()
            speaker.wait(10)
            playlist, replay = end_and_fetch(host, sid)
        finally:
            if speaker is not None and speaker.poll() is None:
                speaker.kill()
            for proc in workers + nodes:
                stop(proc)
            shutil.rmtree(data.parent, ignore_errors=True)
    return {
        "command": " ".join(sys.argv),
        "when": datetime.now().isoformat(timespec="seconds"),
        "lease_seconds": args.lease,
        "signal": args.signal,
        **score(kills, replay, playlist),
        "spread": counts,
        "load_during": os.getloadavg(),
    }


def end_and_fetch(host: Client, sid: str) -> tuple[m3u8.M3U8, bytes]:
    """End the space as its host; its final playlist and replay once the end is written."""
    host.post(f"/api/v1/spaces/{sid}/end")
    ended = wait_until(lambda: "#EXT-X-ENDLIST" in host.http.get(f"/hls/{sid}/index.m3u8").text, 60)
    if ended is None:
        raise SystemExit("the replay never closed")
    playlist = m3u8.loads(host.http.get(f"/hls/{sid}/index.m3u8").text)
    return playlist, host.http.get(f"/hls/{sid}/replay.m4a").content


def score(
    kills: list[dict[str, float | None]], replay: bytes, playlist: m3u8.M3U8
) -> dict[str, object]:
    """Per kill, when the tone was back and how much of it is missing from the replay."""
    tones = tone_times(replay, playlist)
    # The k-th kill starts the k-th new life: its first segment carries a discontinuity.
    starts = [i for i, s in enumerate(playlist.segments) if s.discontinuity]
    for kill, first in zip(kills, starts, strict=False):
        at = float(kill["killed_at"] or 0)
        old = [t for t, i in tones if i < first]
        new = [t for t, i in tones if i >= first]
        kill["heard_again_s"] = new[0] - at if new else None
        kill["lost_s"] = new[0] - old[-1] if new and old else None
    heard = sorted(k["heard_again_s"] for k in kills if k["heard_again_s"] is not None)
    lost = sorted(k["lost_s"] for k in kills if k["lost_s"] is not None)
    return {
        "kills": kills,
        "heard_again_p50_s": statistics.median(heard) if heard else None,
        "heard_again_max_s": max(heard) if heard else None,
        "lost_p50_s": statistics.median(lost) if lost else None,
        "lost_max_s": max(lost) if lost else None,
        "segments_listed": len(playlist.segments),
        "discontinuities": sum(1 for s in playlist.segments if s.discontinuity),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between kills")
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument(
        "--signal",
        choices=("kill", "term"),
        default="kill",
        help="kill: SIGKILL, a crash; term: SIGTERM, a drain (the node restarts either way)",
    )
    parser.add_argument("--spread", type=int, default=20, help="spaces placed at once (0: skip)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
