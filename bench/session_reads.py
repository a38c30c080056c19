"""What a logged-in request pays for its security checks on the scaled bus (Redis).

Every request with a session token asks the bus two things: has this token been logged out,
and is this account suspended. On Redis each question is a round trip. This bench prices
them: `majlis serve` (SQLite, media off, the bus on Redis) pinned to CPU 0, one-thread wrk
on CPU 1 reading `GET /api/v1/notifications` (a small SQL read) with one user's session
token, 16 connections. Each `--src` is a checkout's `src` directory put first on
PYTHONPATH, so two versions of the code run side by side, run after run in alternating
order, against the same Redis.

    flock /tmp/majlis-bench.lock .venv/bin/python bench/session_reads.py \
        --src before=/tmp/before/src --src after=src --runs 5 \
        --out bench/results/session_reads.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from mediabench import CLIENT_CPU, machine, running_server, wait_for_quiet
from storm import PASSWORD, V1, rotating, start_wrk, uptime, wrk_result

REDIS_DB = 13  # the bench's own; the tests use others


def one_phase(src: Path, redis_url: str, seconds: int, connections: int) -> dict[str, Any]:
    redis.Redis.from_url(redis_url).flushdb()
    env = {"MAJLIS_MEDIA": "false", "MAJLIS_BUS_URL": redis_url, "PYTHONPATH": str(src)}
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        body = {"username": "reader", "password": PASSWORD}
        answer = http.post(f"{V1}/auth/register", json=body)
        answer.raise_for_status()
        token = answer.json()["token"]
        check = http.get(f"{V1}/notifications", headers={"Authorization": f"Bearer {token}"})
        check.raise_for_status()
        script = rotating(server.data_dir, "reads", "GET", f"{V1}/notifications", [token])
        time.sleep(1.0)
        result = wrk_result(start_wrk(server.url, script, seconds, connections))
    if result["s2xx"] != result["requests"] or result["socket_errors"]:
        raise SystemExit(f"not every read was answered 2xx: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", required=True, help="name=path/to/src")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis", default=f"redis://127.0.0.1:6379/{REDIS_DB}")
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CLIENT_CPU})
    arms = dict(item.split("=", 1) for item in args.src)
    result: dict[str, Any] = {
        "machine": machine(),
        "uptime_before": uptime(),
        "quiet_wait": wait_for_quiet(args.quiet_load, 300.0),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "runs": {name: [] for name in arms},
    }
    names = list(arms)
    for run in range(args.runs):
        order = names if run % 2 == 0 else names[::-1]
        for name in order:
            got = one_phase(Path(arms[name]).resolve(), args.redis, args.seconds, args.connections)
            result["runs"][name].append(got)
            print(name, json.dumps(got), file=sys.stderr)
    result["uptime_after"] = uptime()
    result["summary"] = {
        name: {
            key: round(statistics.median(r[key] for r in runs), 2)
            for key in ("per_s", "p50_ms", "p99_ms")
        }
        for name, runs in result["runs"].items()
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
