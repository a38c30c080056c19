"""Listener glass-to-glass latency through a real player: hls.js in headless Chromium.

One `majlis serve` pinned to CPU 0; everything else on CPU 1. Per run, in one space:

- the host (`SpeakerClient` + `ToneTrack`) sends a 1 kHz tone at -10 dBFS in bursts of
  0.1 s every PERIOD (3 s); burst k is sent at `ToneTrack.started_at + k·PERIOD`.
- a listener in Debian's Chromium (`bench/hlsjs_listener.mjs`) opens the space's page and
  presses "Listen", as anyone would: the page plays the live playlist through hls.js in
  lowLatencyMode. An AudioWorklet on the <audio> element's output finds each burst onset
  (first sample above -20 dBFS after ≥ 0.5 s below) and stamps it with the wall time at
  which that sample reaches the audio output (`AudioContext.getOutputTimestamp`).
  latency = that time - the burst's send time.
- side by side, in the same run, the LL-HLS follower of bench/latency.py fetches every part
  the moment it exists: its arrival latency is the floor any player could reach.

A burst is told from the next by time alone, so a latency is unambiguous between
MIN_LATENCY and MIN_LATENCY + PERIOD (0.2–3.2 s); every onset is checked to lie inside.
Chromium and the page start listening a few seconds into the run, and the first
`--settle` seconds of playing are not counted (hls.js finds its place at the live edge).

    .venv/bin/python bench/hlsjs_latency.py --runs 3 --seconds 60
    .venv/bin/python bench/hlsjs_latency.py --runs 3 --seconds 60 --edge
    .venv/bin/python bench/hlsjs_latency.py --runs 3 --seconds 60 --edge --player segments
    .venv/bin/python bench/hlsjs_latency.py --runs 3 --seconds 60 --edge --player edge

With `--edge`, `majlis edge` (nginx + Varnish, pinned to CPU 0 with the server) stands in front
of the server and /join hands out its URLs: the browser and the follower both listen
through it.

Prints JSON: per-run numbers, medians over runs, and percentiles pooled over all onsets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from edge import SECRET, free_port, running_edge
from latency import LlhlsFollower, Onset, listener_onsets, summary, wall_offset, within
from majlis.media.rtc.speaker_client import SpeakerClient
from majlis.media.rtc.tone import ToneTrack
from mediabench import (
    CLEAN_OTHERS_PCT,
    Api,
    CpuWindow,
    Server,
    is_clean,
    machine,
    median,
    offer_sender,
    pin_self_to_client_cpu,
    running_server,
    wait_for_quiet,
)

HERE = Path(__file__).resolve().parent
LISTENER = HERE / "hlsjs_listener.mjs"
TONE_HZ = 1000.0
TONE_DBFS = -10.0
PERIOD = 3.0
BURST = (0.1, PERIOD - 0.1)
MIN_LATENCY = 0.2  # no onset can be heard sooner than this after it was sent


def browser_onsets(heard_ms: list[float], send0: float) -> list[Onset]:
    onsets = []
    for stamp in heard_ms:
        heard = stamp / 1000.0
        k = math.floor((heard - send0 - MIN_LATENCY) / PERIOD)
        onsets.append(Onset(k, heard - (send0 + k * PERIOD)))
    return onsets


async def run_browser(server: Server, space_id: str, seconds: float, player: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not installed (README: scripts/setup test)")
    process = await asyncio.create_subprocess_exec(
        node,
        str(LISTENER),
        server.url,
        space_id,
        str(seconds),
        player,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), seconds + 90)
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"the browser listener failed: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["pid"] = process.pid
    return result


async def one_run(server: Server, api: Api, run: int, args: argparse.Namespace) -> dict[str, Any]:
    space = api.create_space("host", f"hls.js latency {run}")
    sid = space["id"]
    offset = wall_offset()
    tone = ToneTrack(TONE_HZ, TONE_DBFS, burst=BURST)
    speaker = SpeakerClient(offer_sender(server.url, api.tokens["host"], sid), tone)
    url, _ = api.playback(sid)
    stop = asyncio.Event()
    try:
        await speaker.connect()
        await speaker.wait_connected(20)
        await asyncio.sleep(2.0)  # the packager has parts
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=4)) as http:
            follower = LlhlsFollower(http, url)
            window = CpuWindow({"server": server.pid, "client": os.getpid()})
            started = time.time()
            following = asyncio.create_task(follower.run(stop))
            browser = await run_browser(server, sid, args.seconds, args.player)
            ended = time.time()
            stop.set()
            cpu = window.finish()
            await asyncio.wait_for(following, 15)
    finally:
        await speaker.close()
        api.end_space("host", sid)
    if tone.started_at is None:
        raise RuntimeError("the speaker never sent a frame")
    send0 = tone.started_at + offset
    playing = browser.get("playing", ended * 1000.0) / 1000.0
    counted_from = playing + args.settle
    heard = within(browser_onsets(browser["onsets"], send0), send0, counted_from, ended, PERIOD)
    rendered = within(
        browser_onsets(browser.get("rendered", []), send0), send0, counted_from, ended, PERIOD
    )
    cut = ended - 3.0
    arrival, _, _ = listener_onsets(follower, send0, PERIOD)
    arrival = within(arrival, send0, counted_from, cut, PERIOD)
    view = follower.view
    outside = [o.latency for o in heard if not MIN_LATENCY < o.latency < MIN_LATENCY + PERIOD]
    return {
        "run": run,
        "cpu": cpu,
        "window_s": round(ended - started, 1),
        "browser_start_to_playing_s": round(playing - browser.get("clicked", 0) / 1000.0, 2),
        "hlsjs_heard": summary(heard),
        "hlsjs_rendered": summary(rendered),
        "follower_arrival": summary(arrival),
        "part_hold_back_s": view.part_hold_back if view else None,
        "onsets_outside_unambiguous_range": outside,
        "bursts_sent_in_counted_window": max(0, math.floor((ended - 1.0 - counted_from) / PERIOD)),
        "browser": {k: v for k, v in browser.items() if k not in ("onsets", "rendered")},
        "heard_ms_each": [round(o.latency * 1000.0, 1) for o in heard],
        "_heard": heard,
        "_arrival": arrival,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    env, port = {}, 0
    if args.edge:
        port = free_port()
        env = {"MAJLIS_SECRET_KEY": SECRET, "MAJLIS_EDGE_URL": f"http://127.0.0.1:{port}"}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(running_server(env))
        if args.edge:
            stack.enter_context(running_edge(server.url, port, server.env, 1000, args.stream_parts))
        api = Api(server)
        api.register("host")
        for run in range(args.runs):
            quiet = wait_for_quiet(args.load_threshold, args.max_wait)
            result = await one_run(server, api, run, args)
            result["load_before"] = quiet
            result["clean"] = is_clean(result["cpu"])
            runs.append(result)
            printable = {k: v for k, v in result.items() if not k.startswith("_")}
            print(json.dumps(printable), file=sys.stderr, flush=True)
        api.close()

    def medians(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": len(chosen)}
        for key in ("hlsjs_heard", "follower_arrival"):
            out[key] = {
                stat: median([r[key][stat] for r in chosen]) for stat in ("p50_ms", "p95_ms")
            }
        return out

    def pooled(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "hlsjs_heard": summary([o for r in chosen for o in r["_heard"]]),
            "follower_arrival": summary([o for r in chosen for o in r["_arrival"]]),
        }

    clean = [r for r in runs if r["clean"]]
    return {
        "benchmark": "hlsjs_latency",
        "machine": machine(),
        "args": vars(args),
        "burst": {"tone_hz": TONE_HZ, "level_dbfs": TONE_DBFS, "on_off_s": BURST},
        "clean_means": f"other processes used <= {CLEAN_OTHERS_PCT}% of a core in the window",
        "medians_over_clean_runs": medians(clean),
        "medians_over_all_runs": medians(runs),
        "pooled_clean": pooled(clean),
        "pooled_all": pooled(runs),
        "goals": {"listener_p95_ms": 1500},
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="listening per run")
    parser.add_argument("--settle", type=float, default=5.0, help="s of playing not counted")
    parser.add_argument("--edge", action="store_true", help="listen through majlis edge")
    parser.add_argument(
        "--stream-parts", type=int, default=1, choices=(1, 2, 4), help="majlis edge --stream-parts"
    )
    parser.add_argument(
        "--player",
        choices=("hlsjs", "segments", "edge", "native"),
        default="hlsjs",
        help="the page's player (?player=): hls.js, chained segment streams, or the "
        "edge's listener stream (with --edge)",
    )
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=180.0, help="s to wait for quiet")
    args = parser.parse_args()
    if args.runs < 1 or not 20 <= args.seconds <= 600 or not 0 <= args.settle < args.seconds:
        raise SystemExit("--runs ≥ 1, 20 ≤ --seconds ≤ 600, 0 ≤ --settle < --seconds")
    pin_self_to_client_cpu()
    result = asyncio.run(main_async(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
