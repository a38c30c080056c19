"""Issue 16: the operator's page in the scaled mode. Two media nodes and two control-plane
workers on Redis and PostgreSQL: the overview, asked of either worker, lists both nodes
with the space on the one that runs it and the listener who joined through the other
worker, and a node that leaves drops off the list."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2e.harness import MAJLIS, Api

from .conftest import cluster, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.scaled, pytest.mark.timeout(180)]


def test_the_operator_sees_every_node_and_the_listeners_of_either_worker(tmp_path: Path) -> None:
    with cluster(tmp_path) as running:
        host, operator = Api(running.workers[0]), Api(running.workers[1])
        host.register("host")
        operator.register("operator")
        worker = running.workers[1]
        granted = subprocess.run(
            [MAJLIS, "moderate", "grant", "operator", "--data-dir", str(worker.data_dir)],
            env=worker.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert granted.returncode == 0, granted.stderr
        sid = host.ok("host", "POST", "/api/v1/spaces", {"title": "Watched"})["id"]
        listener = Api(running.workers[1])
        listener.register("listener")
        listener.ok("listener", "POST", f"/api/v1/spaces/{sid}/join", {})
        owner = running.owner(sid)

        def overview() -> Any:
            return operator.ok("operator", "GET", "/api/v1/admin/overview")

        def owner_counts_it() -> bool:
            counts = {n["url"]: n["spaces"] for n in overview()["nodes"]}
            return counts.get(owner.url) == 1

        # The count comes from the nodes' membership beats, not from the node itself.
        wait_for(owner_counts_it, 20)
        seen = overview()
        nodes = {n["url"]: n for n in seen["nodes"]}
        assert set(nodes) == {n.url for n in running.nodes}, seen["nodes"]
        assert nodes[owner.url]["spaces"] == 1
        assert sum(n["spaces"] for n in nodes.values()) == 1
        assert all(n["capacity"] > 0 and not n["draining"] for n in nodes.values())
        [space] = seen["spaces"]
        assert (space["id"], space["listeners"]) == (sid, 1)
        refused = host.call("host", "GET", "/api/v1/admin/overview")
        assert refused.status_code == 403, refused.text

        other = next(n for n in running.nodes if n is not owner)
        other.process.terminate()
        assert other.process.wait(30) in (0, -15)
        left = wait_for(lambda: len(overview()["nodes"]) == 1, 20)
        assert [n["url"] for n in overview()["nodes"]] == [owner.url]
        for api in (host, operator, listener):
            api.close()
    print(f"operator page: a node that left was off the list after {left:.1f} s")
