"""CPU per live space on a remote media node (`majlis media`) against the embedded node
(`majlis serve`), side by side in one run.

Two set-ups run at the same time, every majlis process pinned to CPU 0 with taskset (its
children inherit it), the speakers to CPU 1:

  embedded  one `majlis serve` (SQLite, in-process bus, the default): its media runs in a
            child process (`python -m majlis.media.runtime.worker`), HTTP and origin in the parent.
  cluster   one `majlis media` node (its media worker is a child process too) and one
            control-plane worker `majlis serve` with MAJLIS_MEDIA=false, on Redis
            (--redis, db 13, flushed first) and a PostgreSQL database of its own
            (majlis_nodecpu_<random>, created here and dropped at the end).

A phase takes one set-up (the other stays idle): it creates one space and starts one
`majlis speak --tone` on it (the host speaking, through that set-up's API), waits for the
node to hold the speaker, lets it settle, and measures a window; then three more spaces
with a speaker each, settle, measure again (4 spaces); then it ends the spaces. Phases
alternate embedded, cluster, embedded, cluster... (--repeats each). Idle windows (both
set-ups up, no space) open and close the run.

CPU is utime+stime from /proc/PID/stat of every process in each tree (the parent and all
its descendants, read at both ends of the window), as % of one core. Also measured: the
speakers, the Redis server (shared with anyone else using it), this database's
PostgreSQL backends, and everything else on the machine (`others_cpu_pct`; a window is
clean when it is at most 25 %, as in mediabench, and each node runs exactly the spaces
of this run: `media_spaces`, read after the window). Per space = CPU at N spaces / N, and
(CPU at N - idle CPU) / N.

    .venv/bin/python bench/node_cpu.py --repeats 2 --counts 1,4 --out bench/results/node_cpu.json

It also reports what one more space costs, (CPU at 4 - CPU at 1) / 3 within each phase.
The processes run whatever `majlis` the venv imports; to measure a commit while the
working tree is being edited, point PYTHONPATH at a snapshot of it (the JSON records
which source ran):

    git archive HEAD src | tar -x -C /tmp/majlis-head
    PYTHONPATH=/tmp/majlis-head/src .venv/bin/python bench/node_cpu.py --out ...

About 3.5 minutes with the defaults. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from mediabench import (
    CLEAN_OTHERS_PCT,
    MAJLIS,
    PASSWORD,
    UNLIMITED_ENV,
    machine,
    wait_for_quiet,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"
CLIENT_CPU = "1"
HOSTS = [f"host{i}" for i in range(16)]  # one host per space, up to node_capacity and more


# --- processes and their CPU ---------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, start time, utime+stime) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12])


def _everyone() -> dict[int, tuple[int, int, int]]:
    out: dict[int, tuple[int, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            out[int(entry.name)] = stat
    return out


def _tree(root: int, table: dict[int, tuple[int, int, int]]) -> set[int]:
    """root and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def _pressure_us() -> int:
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0
    return int(first.rsplit("total=", 1)[1])


@dataclass
class Window:
    """CPU of named groups of processes over a window. A group is given as roots (whose
    whole trees count, as found at both ends) or as plain pids."""

    trees: dict[str, list[int]]
    flat: dict[str, list[int]] = field(default_factory=dict)
    _start: float = 0.0
    _table: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    _pressure: int = 0
    _load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        self._load = os.getloadavg()
        self._pressure = _pressure_us()
        self._table = _everyone()
        self._start = time.monotonic()

    def _groups(self, table: dict[int, tuple[int, int, int]]) -> dict[str, set[int]]:
        groups: dict[str, set[int]] = {
            name: set().union(*(_tree(root, table) for root in roots))
            for name, roots in self.trees.items()
        }
        # A group whose roots lie inside another's tree (a media worker, child of its
        # serve) is taken out of that tree: nothing counts twice.
        for name, roots in self.trees.items():
            for other, pids in groups.items():
                if other != name and roots and set(roots) <= pids:
                    pids -= groups[name]
        for name, pids in self.flat.items():
            groups[name] = {p for p in pids if p in table}
        return groups

    def finish(self) -> dict[str, Any]:
        table = _everyone()
        elapsed = time.monotonic() - self._start
        pressure = _pressure_us() - self._pressure
        before = self._groups(self._table)
        after = self._groups(table)

        def used(pid: int) -> int:
            now = table.get(pid)
            then = self._table.get(pid)
            if now is None:
                return 0  # ended inside the window: its last ticks are lost
            if then is None or then[1] != now[1]:
                return now[2]  # started inside the window
            return now[2] - then[2]

        out: dict[str, Any] = {"window_s": round(elapsed, 2)}
        ours: set[int] = set()
        for name in self.trees | self.flat:
            pids = before[name] | after[name]
            ours |= pids
            out[f"{name}_cpu_pct"] = round(100.0 * sum(map(used, pids)) / CLOCK_TICKS / elapsed, 2)
            out[f"{name}_procs"] = len(after[name])
        others = sum(used(pid) for pid in table if pid not in ours)
        out["others_cpu_pct"] = round(100.0 * others / CLOCK_TICKS / elapsed, 1)
        out["cpu_pressure_some_pct"] = round(100.0 * pressure / 1e6 / elapsed, 1)
        out["load_start"] = [round(v, 2) for v in self._load]
        out["load_end"] = [round(v, 2) for v in os.getloadavg()]
        out["clean"] = out["others_cpu_pct"] <= CLEAN_OTHERS_PCT
        return out


# --- the two set-ups -----------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    url: str
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid


def start(name: str, command: str, data: Path, env: dict[str, str]) -> Proc:
    cmd = ["taskset", "-c", SERVER_CPU, MAJLIS, command, "--port", "0", "--data-dir", str(data)]
    log = open(data.parent / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    line = process.stdout.readline() if process.stdout else ""
    found = re.search(r"http://[\d.]+:\d+", line)
    if not found:
        process.kill()
        raise SystemExit(f"majlis {command} did not start: {line!r} (see {log.name})")
    stdout = process.stdout
    threading.Thread(target=lambda: stdout and stdout.read(), daemon=True).start()
    return Proc(name, found.group(0), process)


def stop(proc: Proc | subprocess.Popen[str]) -> None:
    process = proc.process if isinstance(proc, Proc) else proc
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def metrics(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
    return out


def speakers_on(url: str, space_id: str) -> int:
    return int(metrics(url).get(f'majlis_mixer_speakers{{space="{space_id}"}}', 0))


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False


@dataclass
class Setup:
    """One way of running Majlis: `api` takes the API calls and the speakers' offers,
    `media` holds the spaces (the same process when embedded)."""

    name: str
    api: Proc
    media: Proc
    roots: dict[str, list[int]]  # CPU groups: name -> process tree roots
    env: dict[str, str]
    http: httpx.Client = field(init=False)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.api.url, timeout=30)
        for user in HOSTS:
            answer = self.http.post(
                "/api/v1/auth/register", json={"username": user, "password": PASSWORD}
            )
            answer.raise_for_status()
            self.tokens[user] = answer.json()["token"]

    def call(self, user: str, path: str, body: object = None) -> dict[str, Any]:
        answer = self.http.post(
            path, json=body or {}, headers={"Authorization": f"Bearer {self.tokens[user]}"}
        )
        if answer.status_code >= 400:
            raise SystemExit(f"{self.name}: POST {path}: {answer.status_code} {answer.text}")
        return dict(answer.json()) if answer.content else {}


@contextlib.contextmanager
def database(base_url: str) -> Iterator[tuple[str, str]]:
    name = f"majlis_nodecpu_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base_url.rpartition('/')[0]}/{name}", name
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def backends_of(base_url: str, name: str) -> list[int]:
    async def run() -> list[int]:
        conn = await asyncpg.connect(base_url)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
        finally:
            await conn.close()
        return [int(row["pid"]) for row in rows]

    return asyncio.run(run())


def redis_server_pids() -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "redis-server":
                    out.append(int(entry.name))
    return out


# --- phases --------------------------------------------------------------------------------


def speak(setup: Setup, user: str, space_id: str, tone: float) -> subprocess.Popen[str]:
    cmd = ["taskset", "-c", CLIENT_CPU, MAJLIS, "speak", space_id, "--server", setup.api.url]
    cmd += ["--user", user, "--tone", str(tone)]
    return subprocess.Popen(
        cmd, env=setup.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


Shared = Callable[[], dict[str, list[int]]]


def window(setups: list[Setup], speakers: list[subprocess.Popen[str]], shared: Shared) -> Window:
    trees = {f"{s.name}_{group}": roots for s in setups for group, roots in s.roots.items()}
    trees["speakers"] = [p.pid for p in speakers]
    return Window(trees, shared())


def phase(
    setup: Setup, setups: list[Setup], shared: Shared, args: argparse.Namespace
) -> list[dict[str, Any]]:
    out = []
    spaces: list[tuple[str, str]] = []
    speakers: list[subprocess.Popen[str]] = []
    try:
        for count in sorted(args.counts):
            while len(spaces) < count:
                user = HOSTS[len(spaces)]
                sid = str(setup.call(user, "/api/v1/spaces", {"title": f"cpu {len(spaces)}"})["id"])
                spaces.append((user, sid))
                speakers.append(speak(setup, user, sid, 300.0 + 60.0 * len(spaces)))
            for _, sid in spaces:
                if not wait_until(lambda sid=sid: speakers_on(setup.media.url, sid) >= 1, 40):
                    raise SystemExit(f"{setup.name}: no speaker reached space {sid}")
            time.sleep(args.settle)
            cpu = window(setups, speakers, shared)
            time.sleep(args.window)
            result = cpu.finish()
            dead = [p.pid for p in speakers if p.poll() is not None]
            held = sum(speakers_on(setup.media.url, sid) for _, sid in spaces)
            result |= {"setup": setup.name, "spaces": count, "speakers_held": held}
            result |= spaces_held(setups, {setup.name: count})
            if dead:
                result["speakers_exited"] = dead
            out.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    finally:
        for process in speakers:
            stop(process)
        for user, sid in spaces:
            setup.call(user, f"/api/v1/spaces/{sid}/end")
        time.sleep(args.cooldown)
    return out


def spaces_held(setups: list[Setup], expected: dict[str, int]) -> dict[str, Any]:
    """How many spaces each set-up's media runs, after a window. Any other number than
    ours means a space came from elsewhere (another cluster on the same Redis server,
    say): the window is not clean."""
    held = {s.name: int(metrics(s.media.url).get("majlis_media_spaces", -1)) for s in setups}
    out: dict[str, Any] = {"media_spaces": held}
    if any(held[s.name] != expected.get(s.name, 0) for s in setups):
        out["clean"] = False
        out["foreign_spaces"] = True
    return out


def idle(setups: list[Setup], shared: Shared, seconds: float) -> dict[str, Any]:
    cpu = window(setups, [], shared)
    time.sleep(seconds)
    result = cpu.finish() | {"setup": "idle", "spaces": 0}
    result |= spaces_held(setups, {})
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


# --- summary -------------------------------------------------------------------------------

GROUPS = {
    "embedded": {"serve": "embedded_serve", "worker": "embedded_worker"},
    "cluster": {
        "node": "cluster_node",
        "node_worker": "cluster_node_worker",
        "control": "cluster_control",
    },
}


def med(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def summarize(windows: list[dict[str, Any]], counts: list[int]) -> dict[str, Any]:
    idles = [w for w in windows if w["setup"] == "idle"]
    idle_of = {
        f"{setup}_{part}": med([w[f"{key}_cpu_pct"] for w in idles])
        for setup, parts in GROUPS.items()
        for part, key in parts.items()
    }
    out: dict[str, Any] = {"idle_cpu_pct": idle_of}
    for only_clean in (False, True):
        rows: dict[str, Any] = {}
        for count in counts:
            row: dict[str, Any] = {}
            for setup, parts in GROUPS.items():
                mine = [
                    w
                    for w in windows
                    if w["setup"] == setup
                    and w["spaces"] == count
                    and (w["clean"] or not only_clean)
                ]
                entry: dict[str, Any] = {"windows": len(mine)}
                totals = []
                for part, key in parts.items():
                    values = [w[f"{key}_cpu_pct"] for w in mine]
                    entry[f"{part}_cpu_pct"] = med(values)
                    entry[f"{part}_per_space_pct"] = med([v / count for v in values])
                    base = idle_of[f"{setup}_{part}"] or 0.0
                    entry[f"{part}_per_space_above_idle_pct"] = med(
                        [(v - base) / count for v in values]
                    )
                for w in mine:
                    totals.append(sum(w[f"{key}_cpu_pct"] for key in parts.values()))
                idle_total = sum(idle_of[f"{setup}_{part}"] or 0.0 for part in parts)
                entry["total_cpu_pct"] = med(totals)
                entry["total_per_space_pct"] = med([t / count for t in totals])
                entry["total_per_space_above_idle_pct"] = med(
                    [(t - idle_total) / count for t in totals]
                )
                entry["speakers_cpu_pct"] = med([w["speakers_cpu_pct"] for w in mine])
                entry["others_cpu_pct"] = med([w["others_cpu_pct"] for w in mine])
                if setup == "cluster":
                    entry["redis_cpu_pct"] = med([w["redis_cpu_pct"] for w in mine])
                    entry["postgres_backends_cpu_pct"] = med(
                        [w["postgres_backends_cpu_pct"] for w in mine]
                    )
                row[setup] = entry
            emb, clu = row["embedded"], row["cluster"]
            if emb["total_per_space_pct"] and clu["total_per_space_pct"]:
                row["ratio_cluster_total_to_embedded"] = round(
                    clu["total_per_space_pct"] / emb["total_per_space_pct"], 2
                )
                row["ratio_node_only_to_embedded"] = round(
                    (clu["node_per_space_pct"] + clu["node_worker_per_space_pct"])
                    / emb["total_per_space_pct"],
                    2,
                )
            if emb["total_per_space_above_idle_pct"] and clu["total_per_space_above_idle_pct"]:
                row["ratio_above_idle_cluster_to_embedded"] = round(
                    clu["total_per_space_above_idle_pct"] / emb["total_per_space_above_idle_pct"],
                    2,
                )
            rows[str(count)] = row
        out["clean_only" if only_clean else "all_windows"] = rows
    # What one more space costs: (CPU at the most spaces - at the fewest) / the difference,
    # within each phase (both windows of one phase share the set-up's state).
    low, high = min(counts), max(counts)
    if high > low:
        marginal: dict[str, Any] = {}
        for setup, parts in GROUPS.items():
            values = []
            for w_high in windows:
                if w_high["setup"] != setup or w_high["spaces"] != high:
                    continue
                w_low = next(
                    w
                    for w in windows
                    if w["setup"] == setup
                    and w["spaces"] == low
                    and w.get("repeat") == w_high.get("repeat")
                )
                both = [sum(w[f"{key}_cpu_pct"] for key in parts.values()) for w in (w_low, w_high)]
                values.append((both[1] - both[0]) / (high - low))
            marginal[setup] = {
                "per_space_pct": med(values),
                "phases": [round(v, 2) for v in values],
            }
        if marginal["embedded"]["per_space_pct"]:
            marginal["ratio_cluster_to_embedded"] = round(
                (marginal["cluster"]["per_space_pct"] or 0.0)
                / marginal["embedded"]["per_space_pct"],
                2,
            )
        out[f"marginal_{low}_to_{high}"] = marginal
    return out


# --- main ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    quiet = wait_for_quiet(args.load_threshold, args.max_wait)
    started = time.monotonic()
    redis.Redis.from_url(args.redis).flushdb()
    root = Path(tempfile.mkdtemp(prefix="majlis-nodecpu-"))
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")},
        **UNLIMITED_ENV,
    }
    procs: list[Proc] = []
    windows: list[dict[str, Any]] = []
    try:
        with database(args.postgres) as (db_url, db_name):
            (root / "embedded").mkdir()
            (root / "cluster").mkdir()
            embedded_env = {**base_env, "MAJLIS_SECRET_KEY": "nodecpu-embedded-" + "cd" * 24}
            embedded = start("embedded", "serve", root / "embedded" / "data", embedded_env)
            procs.append(embedded)
            cluster_env = {
                **base_env,
                "MAJLIS_BUS_URL": args.redis,
                "MAJLIS_DATABASE_URL": db_url,
                "MAJLIS_SECRET_KEY": "nodecpu-cluster-" + "ab" * 24,
            }
            node = start("node", "media", root / "cluster" / "data", cluster_env)
            procs.append(node)
            control = start(
                "control",
                "serve",
                root / "cluster" / "data",
                {**cluster_env, "MAJLIS_MEDIA": "false"},
            )
            procs.append(control)
            setups = [
                Setup("embedded", embedded, embedded, {}, embedded_env),
                Setup("cluster", control, node, {}, cluster_env),
            ]
            time.sleep(6.0)  # the media workers are up and imported, the cluster settled
            # The media workers (children of serve and of the node) are groups of their own.
            workers = {
                "embedded_worker": int(metrics(embedded.url).get("majlis_media_worker_pid", 0)),
                "cluster_node_worker": int(metrics(node.url).get("majlis_media_worker_pid", 0)),
            }
            if not all(workers.values()):
                raise SystemExit(f"no media worker process found: {workers}")

            def shared() -> dict[str, list[int]]:
                """Redis, and this database's backends (asked anew: the pool grows)."""
                return {
                    "redis": redis_server_pids(),
                    "postgres_backends": backends_of(args.postgres, db_name),
                }

            setups[0].roots = {"serve": [embedded.pid], "worker": [workers["embedded_worker"]]}
            setups[1].roots = {
                "node": [node.pid],
                "node_worker": [workers["cluster_node_worker"]],
                "control": [control.pid],
            }
            windows.append(idle(setups, shared, args.idle))
            for repeat in range(args.repeats):
                for setup in setups:
                    for result in phase(setup, setups, shared, args):
                        windows.append(result | {"repeat": repeat})
            windows.append(idle(setups, shared, args.idle))
            restarts = {
                "embedded": metrics(embedded.url).get("majlis_media_worker_restarts_total"),
                "cluster_node": metrics(node.url).get("majlis_media_worker_restarts_total"),
            }
    finally:
        for proc in reversed(procs):
            stop(proc)
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)
    return {
        "command": " ".join(["bench/node_cpu.py", *sys.argv[1:]]),
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "majlis_source": _source(base_env),
        "uncommitted_in_working_tree_src": _git("status", "--short", "src"),
        "uptime_before": uptime_before,
        "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "waited_for_quiet": quiet,
        "run_seconds": round(time.monotonic() - started, 1),
        "settle_s": args.settle,
        "window_s": args.window,
        "worker_restarts": restarts,
        "summary": summarize(windows, sorted(args.counts)),
        "windows": windows,
    }


def _source(env: dict[str, str]) -> str:
    """Which majlis the processes run (PYTHONPATH can point at a snapshot of a commit)."""
    python = str(Path(MAJLIS).with_name("python"))
    code = "import majlis, os; print(os.path.dirname(majlis.__file__))"
    return subprocess.run(
        [python, "-c", code], env=env, capture_output=True, text=True
    ).stdout.strip()


def _git(*argv: str) -> str:
    return subprocess.run(["git", *argv], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2, help="phases per set-up")
    parser.add_argument("--counts", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4])
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=15.0)
    parser.add_argument("--idle", type=float, default=8.0, help="idle window, seconds")
    parser.add_argument("--cooldown", type=float, default=2.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=30.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
