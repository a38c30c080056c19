"""Where a media worker's resident memory lives, once a minute: the main heap (brk),
anonymous mappings (mmap: Python's arenas, large malloc blocks, thread arenas), shared
libraries and other files. For telling which of them grows in a soak (issue 13, R6).

    python3 bench/smaps.py --seconds 840 --out /tmp/smaps.jsonl &
    flock /tmp/majlis-bench.lock .venv/bin/python bench/soak.py --minutes 13 --warmup 3

Each line: the time, the worker's pid and allocator settings, resident KB by kind, how
many anonymous mappings there are, and the largest eight as [resident KB, size KB].
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

WORKER = "majlis.media.runtime.worker"
MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def workers() -> list[int]:
    found = subprocess.run(["pgrep", "-f", WORKER], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def allocator_env(pid: int) -> dict[str, str]:
    """The worker's allocator and collector settings, to tell side-by-side soaks apart."""
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = (pair.decode(errors="replace").partition("=") for pair in pairs)
    wanted = ("PYTHONMALLOC", "MALLOC_", "_MAJLIS_MEDIA_GC")
    return {key: value for key, _, value in found if key.startswith(wanted)}


def kind_of(name: str) -> str:
    if not name:
        return "anon"
    if name.startswith("["):
        return name.strip("[]")
    return "lib" if ".so" in name else "file"


def resident_by_kind(pid: int) -> dict[str, object]:
    kinds: Counter[str] = Counter()
    anonymous: list[tuple[int, int]] = []
    kind, size_kb = "anon", 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if MAPPING.match(line):
            fields = line.split(maxsplit=5)
            start, stop = (int(x, 16) for x in fields[0].split("-"))
            kind, size_kb = kind_of(fields[5] if len(fields) > 5 else ""), (stop - start) // 1024
        elif line.startswith("Rss:"):
            kb = int(line.split()[1])
            kinds[kind] += kb
            if kind == "anon":
                anonymous.append((kb, size_kb))
    anonymous.sort(reverse=True)
    return {"kinds": dict(kinds), "anon_n": len(anonymous), "anon_top": anonymous[:8]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--every", type=float, default=60)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ends = time.monotonic() + args.seconds
    with args.out.open("w") as out:
        while time.monotonic() < ends:
            for pid in workers():
                try:
                    row = {
                        "t": round(time.time()),
                        "pid": pid,
                        "env": allocator_env(pid),
                        **resident_by_kind(pid),
                    }
                except OSError:
                    continue  # it ended between pgrep and the read
                out.write(json.dumps(row) + "\n")
                out.flush()
            time.sleep(args.every)


if __name__ == "__main__":
    main()
