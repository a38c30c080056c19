"""Goodput under overload (issue 13, R2): offered 2x and 5x what the server can do, how
much useful work still gets done, and how fast the refused are told.

`majlis serve` (embedded, media off, per-IP limits out of the way: every client is
127.0.0.1; overload shedding as shipped) is pinned to CPU 0, wrk and this script to CPU 1.
The work is the commonest write at scale: listeners' heartbeats (`POST .../heartbeat`),
from 2,000 anonymous members who joined before each phase.

- peak: 32 connections as fast as they go; its 2xx per second is the server's capacity.
- 1x, 2x, 5x: wrk connections each wait a random 0-2x`PACE_MS` before every request,
  as many connections as give that multiple of the peak rate. A connection waits for
  its answer before its next delay, so what is really offered is also reported. These
  clients ignore Retry-After, as a flood or a broken client would.
- 2x polite, 5x polite: the same connections, each waiting out a refusal's Retry-After-Ms
  before its next request, as the web app and the CLI do.
- A probe (this script, 20 heartbeats a second on a connection of its own) records each
  answer's status and time, so that refusals and successes get percentiles of their own.
  It waits out each refusal's Retry-After-Ms, as the web app does: it times how fast a
  client that does as told is answered, not how long an impatient one is held.

With `--beside VARIANT`, each target gets a second server, side by side, that differs
from the shipped one in one way:
- `unfrozen`: its startup heap is not frozen out of the garbage collector's full
  collections (as before 2026-12-07; cli.py);
- `late`: writes are refused only in the application, never as their connection reads
  them (as before 2026-12-08; majlis/serving/early.py);
- `eagergc`: the garbage collector's young generation is collected every 700 new
  objects, Python's default (as before 2026-12-08), not every 20,000 (cli.py);
- `door`: a door of `--door` writes at once, not the shipped 32
  (MAJLIS_OVERLOAD_WRITES_AT_ONCE; majlis/serving/door.py); `--door 0` is no door at all,
  as shipped before 2026-12-08.
Each phase records the steal time of the server's CPU: a hypervisor that runs another
machine on that vCPU looks like a slower server.

With `--scaled`, every server runs the scaled mode: a PostgreSQL database of its own
(made for the run, dropped after) and a Redis database of its own (flushed), the local
servers of this machine. They are not pinned: they take CPU from wrk or the server, as
they would on a small box, and each phase's `others_cpu_pct` says how much. Each server
runs a media node too (a cluster creates no space without one); its space has no
speaker, so its mixer only ticks.

    flock /tmp/majlis-bench.lock .venv/bin/python bench/overload.py --runs 3 --seconds 10 \
        --out bench/results/overload.json
    flock /tmp/majlis-bench.lock .venv/bin/python bench/overload.py --scaled --beside door \
        --door 0 --targets 25 --runs 2 --seconds 8 --out bench/results/overload_scaled.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import numpy as np

from mediabench import (
    CLIENT_CPU,
    MAJLIS,
    SERVER_CPU,
    Server,
    machine,
    running_server,
    wait_for_quiet,
)
from storm import (
    LUA_COMMON,
    anonymous_tokens,
    close_window,
    sampling_metrics,
    start_wrk,
    uptime,
    window,
    wrk_result,
)

V1 = "/api/v1"
MEMBERS = 2000
PACE_MS = 50
PEAK_CONNECTIONS = 32
PROBE_EVERY_S = 0.05

LUA_BEATS = """
local beats = {%(beats)s}
local i = 0
local pace = %(pace)d
request = function()
  i = i + 1
  local beat = beats[(i %% #beats) + 1]
  return wrk.format("POST", "%(path)s", {["Authorization"] = "Bearer " .. beat[1],
    ["Content-Type"] = "application/json"}, beat[2])
end
%(delay)s
"""

DELAY = """
function delay()
  return math.random(0, 2 * pace)
end
"""

# A client that does as told: a refusal's Retry-After-Ms is waited out before the next
# request. wrk calls response() for an answer and later delay() before that connection's
# next request, with other connections' calls in between; the waits queue in order, so
# each refusal delays some connection's next request by its Retry-After (which one does
# not matter to the offered rate).
POLITE = """
local waits = {}
local count = response
function response(status, headers, body)
  count(status, headers, body)
  local ms = tonumber(headers["retry-after-ms"] or headers["Retry-After-Ms"] or "")
  table.insert(waits, ms or 0)
end
function delay()
  local wait = 0
  if #waits > 0 then wait = table.remove(waits, 1) end
  return math.random(0, 2 * pace) + wait
end
"""

Mode = Literal["closed", "paced", "polite"]
Variant = Literal["shipped", "unfrozen", "late", "eagergc", "door"]
EAGER_GC = 700  # the `eagergc` variant's young-generation threshold (Python's default)
DOOR = 0  # the `door` variant's writes at once, unless --door says: none
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"
REDIS_DBS = (12, 13)  # --scaled: one per server, side by side (the tests use 0-15, never at once)
LOOPS: dict[Mode, str] = {"closed": "", "paced": DELAY, "polite": POLITE}
# name: (multiple of the peak rate offered, how the clients behave)
PHASES: dict[str, tuple[int, Mode]] = {
    "peak": (1, "closed"),
    "1x": (1, "paced"),
    "2x": (2, "paced"),
    "5x": (5, "paced"),
    "2x polite": (2, "polite"),
    "5x polite": (5, "polite"),
}


def beats_script(d: Path, name: str, path: str, members: list[tuple[str, str]], mode: Mode) -> Path:
    rows = [
        "{" + json.dumps(token) + "," + json.dumps(json.dumps({"playback_token": playback})) + "}"
        for token, playback in members
    ]
    text = LUA_BEATS % {
        "beats": ",\n".join(rows),
        "pace": PACE_MS,
        "path": path,
        "delay": LOOPS[mode],
    }
    script = d / f"{name}.lua"
    script.write_text(LUA_COMMON + text)
    return script


def join_members(http: httpx.Client, space_id: str, tokens: list[str]) -> list[tuple[str, str]]:
    """(token, playback token) for each; joined again before every phase, since playback
    tokens last two minutes."""
    out = []
    for token in tokens:
        answer = http.post(
            f"{V1}/spaces/{space_id}/join", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        answer.raise_for_status()
        out.append((token, answer.json()["playback_token"]))
    return out


class Probe:
    """Heartbeats at a steady pace on its own connections; every answer's status and time."""

    def __init__(self, url: str, path: str, members: list[tuple[str, str]]) -> None:
        self.url, self.path, self.members = url, path, members
        self.answers: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while not self._stop.wait(PROBE_EVERY_S):
                token, playback = self.members[i % len(self.members)]
                i += 1
                started = time.perf_counter()
                try:
                    answer = http.post(
                        self.path,
                        json={"playback_token": playback},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((status, time.perf_counter() - started))
                if status in (429, 503):
                    self._stop.wait(int(answer.headers.get("retry-after-ms", "1000")) / 1000)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sent": len(self.answers)}
        groups = {"ok": (200, 200), "refused": (429, 503)}
        for name, statuses in groups.items():
            times = [t for s, t in self.answers if s in statuses]
            out[f"{name}_n"] = len(times)
            if times:
                array = np.asarray(times) * 1000
                out[f"{name}_p50_ms"] = round(float(np.percentile(array, 50)), 2)
                out[f"{name}_p99_ms"] = round(float(np.percentile(array, 99)), 2)
                out[f"{name}_max_ms"] = round(float(array.max()), 2)
        out["failed"] = sum(1 for s, _ in self.answers if s == 0)
        return out


def cpu_times(cpu: int) -> list[int]:
    """/proc/stat's jiffies for one CPU: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                return [int(x) for x in line.split()[1:9]]
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def steal_pct(before: list[int], after: list[int]) -> float:
    """The share of a CPU's time the hypervisor gave to others (the server's CPU is
    shared with other machines' vCPUs: a busy neighbour looks like a slower server)."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(100 * spent[7] / max(1, sum(spent)), 1)


def phase(
    server: Server,
    http: httpx.Client,
    space_id: str,
    tokens: list[str],
    seconds: int,
    connections: int,
    mode: Mode,
) -> dict[str, Any]:
    path = f"{V1}/spaces/{space_id}/heartbeat"
    members = join_members(http, space_id, tokens)
    script = beats_script(server.data_dir, "beats", path, members[100:], mode)
    with sampling_metrics(server) as seen, Probe(server.url, path, members[:100]) as probe:
        wrk = start_wrk(server.url, script, seconds, connections)
        opened, times = time.monotonic(), cpu_times(SERVER_CPU)
        # Whether the server was saturated, and whether wrk (one thread) kept up.
        cpu = close_window(window(server, [wrk]), opened, seconds)
        cpu["steal_pct"] = steal_pct(times, cpu_times(SERVER_CPU))
        result = wrk_result(wrk)
    result["cpu"] = cpu
    result["connections"] = connections
    result["goodput_per_s"] = round(result["s2xx"] / result["seconds"], 1)
    result["probe"] = probe.summary()
    result["loop_lag_ms_max"] = round(max(seen["loop_lag_ms"], default=0.0), 1)
    shares = seen["shed_share"]
    result["shed_share_mean"] = round(statistics.fmean(shares), 3) if shares else None
    flights = seen["in_flight"]
    result["in_flight_median"] = statistics.median(flights) if flights else None
    for key in ("holds", "shed_read", "shed_app", "door_waited"):
        result[key] = max(seen[key], default=0) - min(seen[key], default=0)
    return result


@dataclass
class Target:
    """One server, shedding at one target, with its space and members."""

    ms: float
    variant: Variant
    server: Server
    http: httpx.Client
    space_id: str
    tokens: list[str]


def child(variant: Variant, argv: list[str]) -> int:
    """`majlis` as it was before one change (see `--beside`)."""
    import gc

    from majlis.cli import main
    from majlis.serving import ConnectionHolds

    if variant == "unfrozen":
        gc.freeze = lambda: None
    elif variant == "eagergc":
        shipped_set = gc.set_threshold

        def eager(young: int, *older: int) -> None:
            shipped_set(EAGER_GC, *older)

        gc.set_threshold = eager
    elif variant == "late":
        shipped = ConnectionHolds.__init__

        def without_gate(self: ConnectionHolds, gate: Any = None, **kwargs: Any) -> None:
            shipped(self, None, **kwargs)

        ConnectionHolds.__init__ = without_gate  # type: ignore[method-assign]
    return main(argv)


@contextlib.contextmanager
def scaled_backends(redis_db: int) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and a flushed Redis database, as a server's env."""
    name = f"majlis_bench_{uuid.uuid4().hex[:10]}"
    subprocess.run(["psql", f"{POSTGRES}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)
    bus = f"{REDIS}/{redis_db}"
    subprocess.run(["redis-cli", "-u", bus, "flushdb"], check=True, capture_output=True)
    try:
        yield {"MAJLIS_DATABASE_URL": f"{POSTGRES}/{name}", "MAJLIS_BUS_URL": bus}
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        subprocess.run(["psql", f"{POSTGRES}/postgres", "-qc", drop], check=False)


def prepare(
    stack: contextlib.ExitStack, ms: float, variant: Variant, door: int, redis_db: int | None
) -> Target:
    env = {"MAJLIS_MEDIA": "false", "MAJLIS_OVERLOAD_TARGET_MS": str(ms)}
    if variant == "door":
        env["MAJLIS_OVERLOAD_WRITES_AT_ONCE"] = str(door)
    if redis_db is not None:
        env |= stack.enter_context(scaled_backends(redis_db)) | {"MAJLIS_MEDIA": "true"}
    program = (
        (MAJLIS,)
        if variant in ("shipped", "door")
        else (sys.executable, str(Path(__file__).resolve()), "--child", variant)
    )
    server = stack.enter_context(running_server(env, program))
    http = stack.enter_context(httpx.Client(base_url=server.url, timeout=30))
    answer = http.post(
        f"{V1}/auth/register", json={"username": "host", "password": "bench-password-1"}
    )
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    space_id = http.post(f"{V1}/spaces", json={"title": "overload"}, headers=headers).json()["id"]
    return Target(ms, variant, server, http, space_id, anonymous_tokens(http, MEMBERS))


def one_run(target: Target, seconds: int) -> dict[str, dict[str, Any]]:
    t = target
    out = {
        "peak": phase(t.server, t.http, t.space_id, t.tokens, seconds, PEAK_CONNECTIONS, "closed")
    }
    peak_rate = out["peak"]["goodput_per_s"]
    for name, (multiple, mode) in PHASES.items():
        if mode == "closed":
            continue
        time.sleep(2.0)
        # Each connection offers about 1000 / PACE_MS requests a second.
        connections = max(1, round(multiple * peak_rate * PACE_MS / 1000))
        result = phase(t.server, t.http, t.space_id, t.tokens, seconds, connections, mode)
        result["offered_multiple"] = multiple
        result["goodput_of_peak"] = round(result["goodput_per_s"] / peak_rate, 3)
        out[name] = result
    return out


def run(args: argparse.Namespace) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every server runs the phases once per run, in turn, so the targets share the same
    moments of a shared machine."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with contextlib.ExitStack() as stack:
        variants: list[Variant] = ["shipped", *([args.beside] if args.beside else [])]
        pairs = [(ms, variant) for ms in args.targets for variant in variants]
        if args.scaled and len(pairs) > len(REDIS_DBS):
            raise SystemExit(f"--scaled runs at most {len(REDIS_DBS)} servers side by side")
        targets = [
            prepare(stack, ms, variant, args.door, REDIS_DBS[i] if args.scaled else None)
            for i, (ms, variant) in enumerate(pairs)
        ]
        for _ in range(args.runs):
            for target in targets:
                time.sleep(2.0)
                key = f"target {target.ms:g} ms"
                key += "" if target.variant == "shipped" else f" {target.variant}"
                for name, result in one_run(target, args.seconds).items():
                    runs.setdefault(key, {}).setdefault(name, []).append(result)
                    print(key, name, json.dumps(result), file=sys.stderr)
    return runs


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians over the runs, per phase."""

    def med(values: list[Any]) -> Any:
        kept = [v for v in values if v is not None]
        return round(statistics.median(kept), 3) if kept else None

    out = {}
    for name, results in runs.items():
        out[name] = {
            "answered_per_s": med([r["per_s"] for r in results]),
            "goodput_per_s": med([r["goodput_per_s"] for r in results]),
            "goodput_of_peak": med([r.get("goodput_of_peak") for r in results]),
            "s503_share": med([r["s503"] / max(1, r["requests"]) for r in results]),
            "all_p99_ms": med([r["p99_ms"] for r in results]),
            "probe_ok_p99_ms": med([r["probe"].get("ok_p99_ms") for r in results]),
            "probe_refused_n": med([r["probe"]["refused_n"] for r in results]),
            "probe_refused_p50_ms": med([r["probe"].get("refused_p50_ms") for r in results]),
            "probe_refused_p99_ms": med([r["probe"].get("refused_p99_ms") for r in results]),
            "connections": med([r["connections"] for r in results]),
            "server_cpu_pct": med([r["cpu"].get("server_cpu_pct") for r in results]),
            "wrk_cpu_pct": med([r["cpu"].get("wrk0_cpu_pct") for r in results]),
            "others_cpu_pct": med([r["cpu"].get("others_cpu_pct") for r in results]),
            "steal_pct": med([r["cpu"].get("steal_pct") for r in results]),
            "shed_share_mean": med([r.get("shed_share_mean") for r in results]),
            "holds": med([r.get("holds") for r in results]),
            "shed_read": med([r.get("shed_read") for r in results]),
            "shed_app": med([r.get("shed_app") for r in results]),
            "in_flight_median": med([r.get("in_flight_median") for r in results]),
            "door_waited": med([r.get("door_waited") for r in results]),
        }
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        raise SystemExit(child(cast(Variant, sys.argv[2]), sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=float, default=300.0)
    parser.add_argument(
        "--targets",
        type=lambda text: [float(ms) for ms in text.split(",")],
        default=[150.0],
        help="overload_target_ms of each server, comma-separated (side by side)",
    )
    parser.add_argument(
        "--beside",
        choices=["unfrozen", "late", "eagergc", "door"],
        help="beside each server, one that differs in one way: its startup heap not frozen "
        "(before 2026-12-07), writes refused only in the app (before 2026-12-08), the "
        f"collector's young generation collected every {EAGER_GC} objects (before "
        "2026-12-08), or writes let in at the door, --door at once",
    )
    parser.add_argument("--door", type=int, default=DOOR, help="the door variant's limit")
    parser.add_argument(
        "--scaled", action="store_true", help="PostgreSQL and Redis (this machine's) behind each"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    before = uptime()
    quiet = wait_for_quiet(args.quiet_load, args.max_wait)
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    runs = run(args)
    result = {
        "machine": machine(),
        "uptime_before": before,
        "quiet_wait": quiet,
        "started": started,
        "uptime_after": uptime(),
        "args": {
            "runs": args.runs,
            "seconds": args.seconds,
            "targets": args.targets,
            "beside": args.beside,
            "door": args.door if args.beside == "door" else None,
            "scaled": args.scaled,
        },
        "summary": {key: summarise(phases) for key, phases in runs.items()},
        "runs": runs,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
