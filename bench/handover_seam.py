"""The seam of a drain's handover: source time lost or heard twice where the recording
passes from one media node to the other, with and without StandBy carrying the old
node's playout delays.

Two real MediaNodes in this process, a speaker (SpeakerClient over real WebRTC) sending a
chirp whose frequency says which moment of the source is heard; the handover as
Membership runs it (tests/media/test_handover.py, whose helpers this reuses, so the bench
measures exactly what the test bounds). `--stutter` seconds of bursty sending first make
the old node's jitter buffers deep, as a busy moment would; trials alternate "carried"
(the new node starts its buffers as deep as the old one plays) and "fresh" (at their
usual 60 ms, as before).

    .venv/bin/python bench/handover_seam.py --trials 5 --stutter 2 \
        --out bench/results/handover_seam.json

About 7 s a trial.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from majlis.media.hls.origin import SpaceRegistry
from majlis.media.runtime.node import MediaNode, NodeSettings
from media.test_handover import SPACE, ChirpTrack, hand_over, seam
from mediabench import machine


async def trial(carry: bool, stutter: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="majlis-seam-"))
    old, new = (MediaNode(NodeSettings(root), SpaceRegistry()) for _ in range(2))
    for node in (old, new):
        await node.start()
    try:
        delays = await hand_over(old, new, ChirpTrack(stutter=stutter), carry=carry)
    finally:
        for node in (old, new):
            await node.stop()
    lost, twice = seam(root / SPACE)
    return {
        "carried": carry,
        "old_delay_ms": round(delays.get("speaker", 0.0) * 1e3, 1),
        "lost_ms": round(float(lost.ms), 1),
        "twice_ms": round(float(twice.ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="of each kind")
    parser.add_argument("--stutter", type=float, default=2.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    trials = []
    for _ in range(args.trials):
        for carry in (True, False):
            result = asyncio.run(trial(carry, args.stutter))
            print(json.dumps(result), flush=True)
            trials.append(result)
    summary = {}
    for kind, carry in (("carried", True), ("fresh", False)):
        mine = [t for t in trials if t["carried"] is carry]
        summary[kind] = {
            "lost_ms_median": statistics.median(t["lost_ms"] for t in mine),
            "lost_ms_max": max(t["lost_ms"] for t in mine),
            "twice_ms_median": statistics.median(t["twice_ms"] for t in mine),
            "old_delay_ms_median": statistics.median(t["old_delay_ms"] for t in mine),
        }
    result = {"machine": machine(), "args": vars(args) | {"out": str(args.out)}}
    result |= {"summary": summary, "trials": trials}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
