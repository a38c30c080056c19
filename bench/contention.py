"""Live audio on a busy machine, measured: a continuous tone through the embedded server,
with and without other processes keeping every core busy, and the fraction of the
recording's 20 ms frames where the tone is missing or weak (dropped, concealed, late).

`majlis serve` as it ships; `majlis speak` sends 440 Hz at -20 dBFS. The speaker stands
for a remote machine: it runs at nice -10 so that the load hits the server, not the
sender (`--speaker-nice 0` puts it in the contest too). Phases alternate quiet and busy
(`--hogs` processes spinning at nice 0, twice the cores by default), each `--seconds`
long, in one space. The replay is decoded and
every 20 ms frame judged against the phase it fell in (by EXT-X-PROGRAM-DATE-TIME):
a frame whose 440 Hz level is more than 6 dB under the tone's is "bad".

    .venv/bin/python bench/contention.py --rounds 2 --out bench/results/contention.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import m3u8
import numpy as np

from failover import (
    MAJLIS,
    PASSWORD,
    TONE,
    Client,
    end_and_fetch,
    segment_positions,
    start,
    stop,
)

RATE = 48000
FRAME = RATE // 50  # 20 ms
HOG = "while True: pass"


def decode(replay: bytes) -> np.ndarray:
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "-", "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
        input=replay,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(pcm, dtype=np.float32)


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """The 440 Hz level of every 20 ms frame, in dB relative to a full-scale sine."""
    count = len(audio) // FRAME
    frames = audio[: count * FRAME].reshape(count, FRAME)
    t = np.arange(FRAME) / RATE
    ref = np.exp(-2j * np.pi * TONE * t)
    amplitude = 2 * np.abs(frames @ ref) / FRAME
    return 20 * np.log10(np.maximum(amplitude, 1e-9))


def frame_times(playlist: m3u8.M3U8, frames: int, total_s: float) -> np.ndarray:
    """Wall-clock time of each frame, from the segments' program date times."""
    times = np.zeros(frames)
    for segment, position in zip(
        playlist.segments, segment_positions(playlist, total_s), strict=True
    ):
        start_wall = segment.current_program_date_time.timestamp()
        first = round(position * 50)
        index = first + np.arange(round(segment.duration * 50))
        valid = (index >= 0) & (index < frames)
        times[index[valid]] = start_wall + (index[valid] - first) / 50
    return times


def run(args: argparse.Namespace) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="majlis-contention-")) / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")},
        "MAJLIS_PASSWORD": PASSWORD,
    }
    server = start("serve", data, env)
    speaker: subprocess.Popen[str] | None = None
    phases: list[tuple[str, float, float]] = []
    try:
        host = Client(server.url)
        host.register("host")
        sid = str(host.post("/api/v1/spaces", {"title": "contention"})["id"])
        speak = [MAJLIS, "speak", sid, "--server", server.url, "--user", "host"]
        speaker = subprocess.Popen(
            ["nice", "-n", str(args.speaker_nice), *speak, "--tone", str(TONE)],
            env=env,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(4.0)
        for _ in range(args.rounds):
            for phase in ("quiet", "busy"):
                hogs = []
                if phase == "busy":
                    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
                began = time.time()
                time.sleep(args.seconds)
                phases.append((phase, began + 1.0, time.time()))  # a second to take hold
                for hog in hogs:
                    hog.kill()
                    hog.wait()
                print(f"{phase}: done, load {os.getloadavg()[0]:.1f}", flush=True)
        speaker.terminate()
        speaker.wait(10)
        playlist, replay = end_and_fetch(host, sid)
    finally:
        if speaker is not None and speaker.poll() is None:
            speaker.kill()
        stop(server)
        shutil.rmtree(data.parent, ignore_errors=True)
    audio = decode(replay)
    levels = frame_levels(audio)
    times = frame_times(playlist, len(levels), len(audio) / RATE)
    nominal = float(np.median(levels[levels > -40]))
    results = []
    for phase, began, ended_at in phases:
        inside = (times >= began) & (times < ended_at)
        judged = levels[inside]
        bad = int(np.sum(judged < nominal - 6.0))
        results.append(
            {
                "phase": phase,
                "frames": int(judged.size),
                "bad": bad,
                "bad_fraction": bad / max(1, judged.size),
            }
        )
    return {
        "command": " ".join(sys.argv),
        "when": datetime.now().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "hogs": args.hogs,
        "speaker_nice": args.speaker_nice,
        "tone_level_db": nominal,
        "phases": results,
        "missing_from_replay_s": max(0.0, phases[-1][2] - phases[0][1] - len(audio) / RATE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds per phase")
    parser.add_argument("--hogs", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument(
        "--speaker-nice",
        type=int,
        default=-10,
        help="the speaker's niceness: -10 keeps the load off it (a remote machine); 0 "
        "puts it in the same contest as the server",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
