"""Launch night in the scaled mode: a cluster takes as many live spaces as its nodes
announce, and one more is refused with 503 and a reason instead of being placed on a node
that is full. A node that leaves takes its share with it, but not its spaces: they move to
the node left, full or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.harness import Api

from .conftest import Cluster, cluster, spaces_run_by, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.scaled, pytest.mark.timeout(180)]


def test_a_full_cluster_refuses_one_live_space_more(tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=2, workers=1, node_capacity="1") as running:
        host = Api(running.workers[0])
        host.register("host")

        def create(title: str) -> tuple[int, dict[str, object]]:
            answer = host.call("host", "POST", "/api/v1/spaces", {"title": title})
            return answer.status_code, answer.json()

        first, second = create("one"), create("two")
        assert (first[0], second[0]) == (201, 201), (first, second)
        status, body = create("three")
        assert (status, body["error"]) == (503, "media_full"), body
        assert "(2)" in str(body["reason"]), body
        wait_for(lambda: sum(_spaces_run(running).values()) == 2, 20)

        ended = host.call("host", "POST", f"/api/v1/spaces/{first[1]['id']}/end")
        assert ended.status_code == 200, ended.text
        status, body = create("three")
        assert status == 201, body
        wait_for(lambda: sum(_spaces_run(running).values()) == 2, 20)

        # One node leaves: the cluster now takes one space, and runs two. What the node
        # ran moves to the node left, full or not: overfull beats silent.
        counts = _spaces_run(running)
        leaving = next(i for i, n in counts.items() if n > 0)
        staying = 1 - leaving
        running.nodes[leaving].process.terminate()
        assert running.nodes[leaving].process.wait(30) in (0, -15)
        wait_for(lambda: _spaces_run(running) == {staying: 2}, 20)

        def refused_for_one() -> bool:
            status, body = create("four")
            assert status in (201, 503), body
            return status == 503 and "(1)" in str(body["reason"])

        wait_for(refused_for_one, 20)
        host.close()


def _spaces_run(running: Cluster) -> dict[int, int]:
    """Spaces each node still up runs now, by its index."""
    return {
        i: spaces_run_by(node)
        for i, node in enumerate(running.nodes)
        if node.process.poll() is None
    }
