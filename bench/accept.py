"""New connections on a busy worker: how long a newcomer waits for its first answer while
the worker is busy with the connections it already has.

Two servers side by side, run after run (order alternating): `majlis serve` as shipped
(`majlis.serving.Server`: new connections accepted up to 128 per turn of the loop), and
the same with stock `uvicorn.Server` put back (uvloop's libuv accepts one connection per
turn). Each is pinned to CPU 0, media off; wrk and this script on CPU 1.

- Load: wrk opens `--connections` keep-alive connections at once and each asks
  `GET /healthz` after a random 0-100 ms pause, which is more than one
  core can answer: the worker is saturated for the whole window.
- Newcomers: every 0.1 s this script opens a fresh connection and times connect + one
  `GET /healthz` (a newcomer's first answer), on its own thread.
- The kernel's accept queue (Recv-Q of the listening socket, `ss -ltn`) every 0.25 s.

    flock /tmp/majlis-bench.lock .venv/bin/python bench/accept.py --runs 3 \\
        --out bench/results/accept.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import numpy as np

from mediabench import CLIENT_CPU, machine, running_server, wait_for_quiet
from storm import LUA_COMMON, start_wrk, uptime, wrk_result

VARIANTS = ("batched", "stock")
NEWCOMER_EVERY_S = 0.1
QUEUE_EVERY_S = 0.25

LUA_PACED_READS = """
request = function()
  return wrk.format("GET", "/healthz")
end
function delay()
  return math.random(0, 100)
end
"""


def child(variant: str, argv: list[str]) -> int:
    """Runs `majlis` with the chosen server class: what the parent starts as its server."""
    import uvicorn

    import majlis.serving
    from majlis.cli import main

    if variant == "stock":
        majlis.serving.Server = uvicorn.Server  # type: ignore[misc]
    return main(argv)


class Every:
    """Calls `step` every `period` seconds on a thread of its own, inside a with-block."""

    period = 1.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.step()

    def step(self) -> None:
        raise NotImplementedError


class Newcomers(Every):
    """A fresh connection every NEWCOMER_EVERY_S: connect, GET /healthz, close; timed."""

    period = NEWCOMER_EVERY_S
    request = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"

    def __init__(self, url: str) -> None:
        super().__init__()
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.times: list[float] = []
        self.failed = 0

    def step(self) -> None:
        started = time.perf_counter()
        try:
            with socket.create_connection(self.address, timeout=15) as conn:
                conn.sendall(self.request)
                if not conn.recv(64).startswith(b"HTTP/1.1 200"):
                    raise OSError("not a 200")
        except OSError:
            self.failed += 1
            return
        self.times.append(time.perf_counter() - started)


class AcceptQueue(Every):
    """The listening socket's Recv-Q (connections the kernel holds, not yet accepted)."""

    period = QUEUE_EVERY_S

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.depths: list[int] = []

    def step(self) -> None:
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{self.port}"], capture_output=True, text=True
        ).stdout.split()
        self.depths.append(int(out[1]) if len(out) > 1 else 0)


def window(variant: str, connections: int, seconds: int) -> dict[str, Any]:
    program = (sys.executable, str(Path(__file__).resolve()), "--child", variant)
    with running_server({"MAJLIS_MEDIA": "false"}, program) as server:
        script = server.data_dir / "reads.lua"
        script.write_text(LUA_COMMON + LUA_PACED_READS)
        port = urlsplit(server.url).port or 80
        with AcceptQueue(port) as queue, Newcomers(server.url) as newcomers:
            result = wrk_result(start_wrk(server.url, script, seconds, connections))
    times = np.asarray(newcomers.times) * 1000
    result["newcomers"] = {
        "n": len(newcomers.times),
        "failed": newcomers.failed,
        "p50_ms": round(float(np.percentile(times, 50)), 1) if len(times) else None,
        "p99_ms": round(float(np.percentile(times, 99)), 1) if len(times) else None,
        "max_ms": round(float(times.max()), 1) if len(times) else None,
    }
    depths = queue.depths
    result["accept_queue"] = {
        "max": max(depths, default=0),
        "seconds_nonzero": round(sum(1 for d in depths if d) * QUEUE_EVERY_S, 2),
        "series": depths,
    }
    result["variant"] = variant
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]

        def med(get: Any, rows: list[dict[str, Any]] = mine) -> float | None:
            values = [v for v in (get(r) for r in rows) if v is not None]
            return round(statistics.median(values), 1) if values else None

        out[variant] = {
            "answered_per_s": med(lambda r: r["per_s"]),
            "p50_ms": med(lambda r: r["p50_ms"]),
            "p99_ms": med(lambda r: r["p99_ms"]),
            "max_ms": med(lambda r: r["max_ms"]),
            "newcomer_p50_ms": med(lambda r: r["newcomers"]["p50_ms"]),
            "newcomer_p99_ms": med(lambda r: r["newcomers"]["p99_ms"]),
            "newcomer_max_ms": med(lambda r: r["newcomers"]["max_ms"]),
            "accept_queue_max": med(lambda r: r["accept_queue"]["max"]),
            "accept_queue_seconds_nonzero": med(lambda r: r["accept_queue"]["seconds_nonzero"]),
        }
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        raise SystemExit(child(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=1600)
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=float, default=300.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    before = uptime()
    quiet = wait_for_quiet(args.quiet_load, args.max_wait)
    runs = []
    for i in range(args.runs):
        order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            result = window(variant, args.connections, args.seconds)
            result["run"] = i + 1
            runs.append(result)
            brief = {k: result[k] for k in ("variant", "per_s", "p99_ms", "max_ms")}
            brief["newcomer_max_ms"] = result["newcomers"]["max_ms"]
            brief["accept_queue_max"] = result["accept_queue"]["max"]
            print(json.dumps(brief), file=sys.stderr)
    report = {
        "benchmark": "accept",
        "command": " ".join(["bench/accept.py", *sys.argv[1:]]),
        "machine": machine(),
        "uptime_before": before,
        "uptime_after": uptime(),
        "quiet": quiet,
        "connections": args.connections,
        "seconds": args.seconds,
        "medians": summarise(runs),
        "runs": runs,
    }
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(report["medians"], indent=1))


if __name__ == "__main__":
    main()
