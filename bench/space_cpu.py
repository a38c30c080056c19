"""Server CPU per live space by number of speakers, and the mixer's tick lateness.

One `majlis serve` pinned to CPU 0. This process (pinned to CPU 1) registers 13 users and,
for each speaker count, creates a live space, puts that many people on its stage the way
people get there (the host, then up to two co-hosts named by the host, then speakers who
asked and were approved), and connects that many real WebRTC speakers (aiortc
`SpeakerClient`, each sending a continuous `ToneTrack` at its own frequency, -30 dBFS, and
receiving its mix-minus; with `--talking K`, only the first K do, the others send the same
tone at -70 dBFS, a quiet room; with `--muted M`, the host mutes the last M on stage, who
go on sending as an open microphone does). After a warm-up, the server's CPU is read from
/proc/PID/stat (utime+stime of the whole process, all threads) over the window, as % of one
core; mixer tick lateness and cost come from the server's /metrics for that space. The
space is then ended. Counts are interleaved run after run (rotated, so no count always goes first).

    .venv/bin/python bench/space_cpu.py --runs 3 --seconds 12 --counts 1,5,13

Prints JSON: per phase, medians per count over runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

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

USERS = [f"speaker{i:02d}" for i in range(13)]  # USERS[0] hosts
TONE_DBFS = -30.0  # 13 of them sum to at most -7.7 dBFS: the limiter stays out of it
QUIET_DBFS = -70.0  # a speaker who is not talking: a microphone in a quiet room


async def phase(server: Server, api: Api, count: int, args: argparse.Namespace) -> dict[str, Any]:
    host = USERS[0]
    space = api.create_space(host, f"cpu {count}")
    sid = space["id"]
    on_stage = USERS[: max(count, 1)]
    api.stage(sid, host, on_stage[1:])
    for user in on_stage[max(1, count - args.muted) : count]:
        api.ok(host, "POST", f"/api/v1/spaces/{sid}/participants/{api.ids[user]}/mute")
    clients = [
        SpeakerClient(
            offer_sender(server.url, api.tokens[user], sid),
            ToneTrack(300.0 + 50.0 * index, TONE_DBFS if index < args.talking else QUIET_DBFS),
        )
        for index, user in enumerate(on_stage[:count])
    ]
    try:
        for client in clients:
            await client.connect()
        await asyncio.gather(*(client.wait_connected(30) for client in clients))
        await asyncio.sleep(args.warmup)
        before = server.space_metrics(sid)
        received = [client.frames_received for client in clients]
        window = CpuWindow({**server.pids(), "client": os.getpid()})
        await asyncio.sleep(args.seconds)
        cpu = window.finish()
        after = server.space_metrics(sid)
        rates = [
            (client.frames_received - start) / cpu["window_s"]
            for client, start in zip(clients, received, strict=True)
        ]
    finally:
        for client in clients:
            await client.close()
        api.end_space(host, sid)
    return {
        "speakers": count,
        "speakers_in_mixer": after.get("majlis_mixer_speakers"),
        "cpu": cpu,
        "tick_late_p50_ms": after.get("majlis_mixer_tick_late_p50_ms"),
        "tick_late_p99_ms": after.get("majlis_mixer_tick_late_p99_ms"),
        "tick_late_max_ms": after.get("majlis_mixer_tick_late_max_ms"),
        "tick_cost_p99_ms": after.get("majlis_mixer_tick_cost_p99_ms"),
        "ticks_in_stats": after.get("majlis_mixer_ticks_total"),
        "ticks_skipped_in_window": after.get("majlis_mixer_ticks_skipped_total", 0.0)
        - before.get("majlis_mixer_ticks_skipped_total", 0.0),
        "mix_minus_frames_per_s_min": round(min(rates), 1) if rates else None,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counts: list[int] = args.counts
    phases: list[dict[str, Any]] = []
    with running_server() as server:
        api = Api(server)
        for user in USERS:
            api.register(user)
        await asyncio.sleep(2.0)
        idle_window = CpuWindow(server.pids())
        await asyncio.sleep(5.0)
        idle = idle_window.finish()
        for run in range(args.runs):
            order = counts[run % len(counts) :] + counts[: run % len(counts)]
            for count in order:
                quiet = wait_for_quiet(args.load_threshold, args.max_wait)
                result = await phase(server, api, count, args)
                result |= {"run": run, "load_before": quiet, "clean": is_clean(result["cpu"])}
                phases.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
        api.close()

    def summarize(mine: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "phases": len(mine),
            "server_cpu_pct_median": median([p["cpu"]["server_cpu_pct"] for p in mine]),
            "server_cpu_pct_each": [p["cpu"]["server_cpu_pct"] for p in mine],
            # 0 in thread mode: the media node's CPU is then in server_cpu_pct.
            "worker_cpu_pct_median": median([p["cpu"].get("worker_cpu_pct", 0.0) for p in mine]),
            "tick_late_p99_ms_median": median([p["tick_late_p99_ms"] for p in mine]),
            "tick_late_max_ms_median": median([p["tick_late_max_ms"] for p in mine]),
            "tick_cost_p99_ms_median": median([p["tick_cost_p99_ms"] for p in mine]),
            "client_cpu_pct_median": median([p["cpu"]["client_cpu_pct"] for p in mine]),
            "others_cpu_pct_median": median([p["cpu"]["others_cpu_pct"] for p in mine]),
            "load_1m_median": median([p["cpu"]["load_1m_start"] for p in mine]),
        }

    table = []
    for count in counts:
        mine = [p for p in phases if p["speakers"] == count]
        table.append(
            {
                "speakers": count,
                "clean": summarize([p for p in mine if p["clean"]]),
                "all": summarize(mine),
            }
        )
    return {
        "benchmark": "space_cpu",
        "machine": machine(),
        "args": vars(args),
        "idle_server_cpu_pct": idle["server_cpu_pct"],
        "idle_worker_cpu_pct": idle.get("worker_cpu_pct", 0.0),
        "goal": "13 speakers <= 25% of one core",
        "clean_means": f"other processes used <= {CLEAN_OTHERS_PCT}% of a core in the window",
        "table": table,
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="CPU window per phase")
    parser.add_argument("--warmup", type=float, default=4.0, help="after all are connected")
    parser.add_argument(
        "--counts",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[1, 5, 13],
        help="speaker counts, comma separated (0..13)",
    )
    parser.add_argument(
        "--talking", type=int, default=13, help="speakers sending a speech-level tone"
    )
    parser.add_argument("--muted", type=int, default=0, help="speakers the host mutes")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=60.0, help="s to wait for quiet")
    args = parser.parse_args()
    if (
        args.runs < 1
        or not 2 <= args.seconds <= 300
        or any(not 0 <= c <= 13 for c in args.counts)
        or not 0 <= args.talking <= 13
        or not 0 <= args.muted <= 12
    ):
        raise SystemExit(
            "--runs ≥ 1, 2 ≤ --seconds ≤ 300, counts and --talking within 0..13, --muted 0..12"
        )
    pin_self_to_client_cpu()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
