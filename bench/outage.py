"""A control-plane outage, from the listeners' side (issue 13, R3): how many requests a crowd
of listeners sends while the server is gone, as a ratio of what it sends normally, and how
soon they are all back once it returns.

An embedded `majlis serve` (as it ships: SQLite, in-memory bus, media in its child process)
runs one live space. N simulated listeners, asyncio tasks in this one process, each do
what `majlis listen` does, with its code and its retry policy (majlis.client: ApiClient,
TokenRelay, the heartbeat loop, one RetryBudget per listener): an anonymous id, a join
(through the waiting room if it queues), a heartbeat on the server's schedule (every 15 s,
renewing the playback token), and the player's playlist poll every `--poll` seconds
through the relay (which retries an upstream that is gone). Every HTTP attempt is counted
(an httpx request hook: refused connections count too).

After the joins and `--settle` s, the request rate is measured for `--baseline` s. Then the
server gets SIGTERM (default; what an operator's restart or a crash is for clients: the
port refuses at once) and, `--outage` s after the signal, is started again on the same port
and data directory; with `--signal stop` it is SIGSTOPped and SIGCONTed instead (a hung
server: connections are accepted by the kernel and wait). Reported:

  outage_ratio      requests per second during the outage / baseline (goal <= 1.1)
  back_99_s         time from the server answering /healthz again until 99 % of the
                    listeners have had a heartbeat answered (counted, token renewed;
                    goal <= 30 s), and the same for their playlist polls

    flock /tmp/majlis-bench.lock .venv/bin/python bench/outage.py --listeners 300 \\
        --out bench/results/outage.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from crash import answers, free_port
from failover import Client, Proc, start, stop, wait_until
from majlis.client.api import ApiClient
from majlis.client.listen import HEARTBEAT_SECONDS, heartbeat
from majlis.client.relay import TokenRelay
from majlis.client.retry import RetryBudget

MAX_LISTENERS = 1000


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


@dataclass
class Tally:
    """Every attempt by second since t0 and by kind."""

    t0: float = field(default_factory=time.monotonic)
    per_second: Counter[int] = field(default_factory=Counter)
    kinds: Counter[tuple[int, str]] = field(default_factory=Counter)

    async def hook(self, request: httpx.Request) -> None:
        second = int(time.monotonic() - self.t0)
        path = request.url.path
        kind = (
            "heartbeat"
            if path.endswith("/heartbeat")
            else "playlist"
            if path.startswith("/hls/")
            else "join"
            if path.endswith("/join")
            else "other"
        )
        self.per_second[second] += 1
        self.kinds[(second, kind)] += 1

    def rate(self, start: float, end: float, kind: str | None = None) -> float:
        """Mean attempts per second over whole seconds in [start, end) (since t0)."""
        first, last = int(start - self.t0), int(end - self.t0)
        if last <= first:
            return 0.0
        if kind is None:
            total = sum(self.per_second[s] for s in range(first, last))
        else:
            total = sum(self.kinds[(s, kind)] for s in range(first, last))
        return total / (last - first)


@dataclass
class Listener:
    index: int
    joined_at: float | None = None
    beats: list[float] = field(default_factory=list)  # answered heartbeats (monotonic)
    polls: list[float] = field(default_factory=list)  # answered playlist polls
    budget: RetryBudget = field(default_factory=RetryBudget)
    failed: str | None = None


async def run_listener(
    me: Listener, url: str, space_id: str, tally: Tally, poll_s: float, stop_at: asyncio.Event
) -> None:
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=3.0),
        event_hooks={"request": [tally.hook]},
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        api = ApiClient(url, budget=me.budget, http=http)
        await api.anonymous()
        admitted = await api.join(space_id)
        me.joined_at = time.monotonic()
        relay = TokenRelay(
            admitted["playback_url"], admitted["playback_token"], budget=me.budget, http=http
        )
        left = float(admitted["expires_at"]) - time.time()
        every = max(1.0, min(HEARTBEAT_SECONDS, left / 3))

        def renewed() -> None:
            me.beats.append(time.monotonic())

        async def player() -> None:
            # What ffmpeg's HLS reader does with a live playlist: ask again every target
            # duration, whatever the last answer was.
            await asyncio.sleep(random.uniform(0, poll_s))
            while True:
                status, _, _ = await relay.fetch("/index.m3u8")
                if status == 200:
                    me.polls.append(time.monotonic())
                await asyncio.sleep(poll_s)

        # A listener's first beat comes `every` after its join, as in `majlis listen`.
        tasks = [
            asyncio.create_task(heartbeat(api, space_id, relay, every, renewed)),
            asyncio.create_task(player()),
        ]
        await stop_at.wait()
    except Exception as error:  # reported: one listener's failure
        me.failed = f"{type(error).__name__}: {error}"
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await http.aclose()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def back_times(listeners: list[Listener], after: float, attr: str) -> list[float]:
    """Per listener: seconds from `after` to its first answered beat/poll after it
    (listeners never back are left out; count them separately)."""
    times = []
    for me in listeners:
        later = [t for t in getattr(me, attr) if t >= after]
        if later:
            times.append(later[0] - after)
    return times


async def scenario(args: argparse.Namespace, server: Proc, url: str, space_id: str) -> dict:
    tally = Tally()
    stop_at = asyncio.Event()
    listeners = [Listener(i) for i in range(args.listeners)]
    tasks = []
    for me in listeners:  # joins spread at --join-rate per second
        tasks.append(
            asyncio.create_task(run_listener(me, url, space_id, tally, args.poll, stop_at))
        )
        await asyncio.sleep(1 / args.join_rate)
    for _ in range(120):  # up to 60 s for the joins to be answered
        settled = sum(m.joined_at is not None or m.failed is not None for m in listeners)
        if settled == len(listeners):
            break
        await asyncio.sleep(0.5)
    joined = sum(m.joined_at is not None for m in listeners)
    print(f"{joined}/{len(listeners)} joined", flush=True)
    await asyncio.sleep(args.settle)

    base_start = time.monotonic()
    await asyncio.sleep(args.baseline)
    base_end = time.monotonic()
    retries_before = sum(m.budget.retries for m in listeners)

    signalled = time.monotonic()
    process = server.process
    if args.signal == "term":
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    else:
        process.send_signal(signal.SIGSTOP)
    exited = time.monotonic()
    print(f"server stopped ({args.signal}) in {exited - signalled:.2f} s", flush=True)
    await asyncio.sleep(max(0.0, signalled + args.outage - time.monotonic()))
    restart_at = time.monotonic()
    retries_during = sum(m.budget.retries for m in listeners) - retries_before
    if args.signal == "term":
        server = await asyncio.to_thread(start, "serve", Path(args.data), dict(args.env), args.port)
    else:
        process.send_signal(signal.SIGCONT)
    answering = await asyncio.to_thread(wait_until, lambda: answers(url), 60, 0.02)
    healthy_at = time.monotonic()
    print(f"answering again {answering} s after the restart", flush=True)
    await asyncio.sleep(args.after)
    stop_at.set()
    await asyncio.gather(*tasks)

    baseline = tally.rate(base_start, base_end)
    outage = tally.rate(signalled, restart_at)
    after_30 = tally.rate(healthy_at, healthy_at + 30)
    kinds = ("heartbeat", "playlist", "join", "other")
    live = [m for m in listeners if m.joined_at is not None]
    beat_back = back_times(live, healthy_at, "beats")
    poll_back = back_times(live, healthy_at, "polls")
    return {
        "server": server,
        "result": {
            "listeners": args.listeners,
            "joined": len(live),
            "failed": Counter(m.failed for m in listeners if m.failed).most_common(5),
            "signal": args.signal,
            "outage_s": round(restart_at - signalled, 2),
            "stopped_in_s": round(exited - signalled, 2),
            "restart_to_answering_s": round(healthy_at - restart_at, 2),
            "baseline_per_s": round(baseline, 1),
            "outage_per_s": round(outage, 1),
            "outage_ratio": round(outage / baseline, 3) if baseline else None,
            "first_30s_after_per_s": round(after_30, 1),
            "first_30s_after_ratio": round(after_30 / baseline, 3) if baseline else None,
            "by_kind_per_s": {
                k: {
                    "baseline": round(tally.rate(base_start, base_end, k), 2),
                    "outage": round(tally.rate(signalled, restart_at, k), 2),
                    "first_30s_after": round(tally.rate(healthy_at, healthy_at + 30, k), 2),
                }
                for k in kinds
            },
            "budget_retries_during_outage": retries_during,
            "heartbeat_back_s": {
                "back": len(beat_back),
                "of": len(live),
                "p50": percentile(beat_back, 0.5),
                "p99": percentile(beat_back, 0.99) if len(beat_back) == len(live) else None,
                "max": max(beat_back, default=None),
            },
            "playlist_back_s": {
                "back": len(poll_back),
                "of": len(live),
                "p50": percentile(poll_back, 0.5),
                "p99": percentile(poll_back, 0.99) if len(poll_back) == len(live) else None,
                "max": max(poll_back, default=None),
            },
            "per_second": [
                tally.per_second[s] for s in range(int(time.monotonic() - tally.t0) + 1)
            ],
            "marks_s": {
                "baseline": [round(base_start - tally.t0, 1), round(base_end - tally.t0, 1)],
                "signalled": round(signalled - tally.t0, 1),
                "restarted": round(restart_at - tally.t0, 1),
                "answering": round(healthy_at - tally.t0, 1),
            },
        },
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    if not 1 <= args.listeners <= MAX_LISTENERS:
        raise SystemExit(f"--listeners must be 1..{MAX_LISTENERS}")
    data = Path(tempfile.mkdtemp(prefix="majlis-outage-")) / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")},
        # Every listener here comes from 127.0.0.1: per-IP limits as for that many IPs.
        "MAJLIS_WRITE_RATE_IP": "100000",
        "MAJLIS_WRITE_BURST_IP": "100000",
        "MAJLIS_AUTH_RATE_IP": "100000",
        "MAJLIS_AUTH_BURST_IP": "100000",
        "MAJLIS_MAX_REQUESTS_PER_IP": "100000",
    }
    args.port = free_port()
    args.data = str(data)
    args.env = env
    before = uptime()
    server = start("serve", data, env, args.port)
    url = server.url
    try:
        host = Client(url)
        host.register("host")
        space_id = str(host.post("/api/v1/spaces", {"title": "outage"})["id"])
        ok = wait_until(lambda: host.http.get(f"/hls/{space_id}/index.m3u8").status_code != 404, 20)
        print(f"space {space_id} live; playlist after {ok} s", flush=True)
        outcome = asyncio.run(scenario(args, server, url, space_id))
        server = outcome["server"]
        result = outcome["result"]
    finally:
        if server.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                server.process.send_signal(signal.SIGCONT)
        stop(server)
        shutil.rmtree(data.parent, ignore_errors=True)
    return {
        "command": " ".join(sys.argv),
        "when": datetime.now().isoformat(timespec="seconds"),
        "uptime_before": before,
        "uptime_after": uptime(),
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--join-rate", type=float, default=50.0, help="joins per second")
    parser.add_argument("--poll", type=float, default=2.0, help="playlist poll, seconds")
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--baseline", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--after", type=float, default=45.0, help="measured after recovery")
    parser.add_argument("--signal", choices=("term", "stop"), default="term")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    summary = {k: v for k, v in result.items() if k != "per_second"}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
