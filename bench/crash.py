"""Crash healing of the embedded server, measured: kill -9 `majlis serve` (the whole
server: its media worker is left to notice by itself) while a space is live, start it
again at once on the same port and data directory, as systemd would, and see when the
space's audio comes back and how much of it was lost.

`majlis speak` sends a 440 Hz tone; it reconnects by itself. At the end the space is
ended and its replay decoded as in bench/failover.py (each segment's
EXT-X-PROGRAM-DATE-TIME puts the tone back on the wall clock):

  heard_again_s   kill -> the first tone after it, at the origin
  lost_s          the last tone before the kill -> the first tone after it
  restarted_s     kill -> the new server answers /healthz

    .venv/bin/python bench/crash.py --kills 5 --out bench/results/crash.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from failover import MAJLIS, PASSWORD, TONE, Client, end_and_fetch, score, start, stop, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def run(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="majlis-crash-")) / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")},
        "MAJLIS_PASSWORD": PASSWORD,
    }
    port = free_port()
    server = start("serve", data, env, port)
    speaker: subprocess.Popen[str] | None = None
    try:
        host = Client(server.url)
        host.register("host")
        sid = str(host.post("/api/v1/spaces", {"title": "crash"})["id"])
        speaker = subprocess.Popen(
            [MAJLIS, "speak", sid, "--server", server.url, "--user", "host", "--tone", str(TONE)],
            env=env,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        kills: list[dict[str, float | None]] = []
        time.sleep(args.settle)
        for round_ in range(args.kills):
            killed_at = time.time()
            server.process.kill()
            server.process.wait(10)
            server = start("serve", data, env, port)
            restarted = wait_until(lambda url=server.url: answers(url), 60, step=0.02)
            kills.append({"killed_at": killed_at, "restarted_s": time.time() - killed_at})
            print(f"kill {round_ + 1}: answering again {restarted} s after start", flush=True)
            time.sleep(args.settle)
        speaker.terminate()
        speaker.wait(10)
        host.http = httpx.Client(base_url=server.url, timeout=20)
        host.login("host")
        playlist, replay = end_and_fetch(host, sid)
    finally:
        if speaker is not None and speaker.poll() is None:
            speaker.kill()
        stop(server)
        shutil.rmtree(data.parent, ignore_errors=True)
    return {
        "command": " ".join(sys.argv),
        "when": datetime.now().isoformat(timespec="seconds"),
        **score(kills, replay, playlist),
        "load_during": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds between kills")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
