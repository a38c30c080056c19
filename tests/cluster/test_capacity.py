"""Launch night in the scaled mode: a cluster takes as many live spaces as its nodes
announce, and one more is refused with 503 and a reason instead of being placed on a node
that is full. A node that leaves takes its share with it, but not its spaces: they move to
the node left, full or not. A node whose mixers fall behind takes no more, whatever its
count says."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from e2e.harness import Api, Server

from .conftest import Cluster, cluster, spaces_run_by, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.scaled, pytest.mark.timeout(180)]


def test_a_full_cluster_refuses_one_live_space_more(tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=2, workers=1, node_capacity="1") as running:
        host = Api(running.workers[0])
        host.register("host")

        create = _creator(host)
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


def _creator(host: Api) -> Callable[[str], tuple[int, dict[str, object]]]:
    """Creates a live space as "host": the status and the body."""

    def create(title: str) -> tuple[int, dict[str, object]]:
        answer = host.call("host", "POST", "/api/v1/spaces", {"title": title})
        return answer.status_code, answer.json()

    return create


def _spaces_run(running: Cluster) -> dict[int, int]:
    """Spaces each node still up runs now, by its index."""
    return {
        i: spaces_run_by(node)
        for i, node in enumerate(running.nodes)
        if node.process.poll() is None
    }


@pytest.mark.realtime  # "caught up" needs the machine to give the node its time back
def test_a_node_that_falls_behind_takes_no_new_spaces(tmp_path: Path) -> None:
    with cluster(tmp_path, nodes=2, workers=1, node_capacity="10") as running:
        host = Api(running.workers[0])
        host.register("host")

        create = _creator(host)
        assert create("first")[0] == 201
        wait_for(lambda: sum(_spaces_run(running).values()) == 1, 20)
        slow = next(i for i, n in _spaces_run(running).items() if n == 1)
        fast = 1 - slow
        with _starved(running.nodes[slow]):
            wait_for(lambda: _metric(running.workers[0], "majlis_cluster_nodes_behind") == 1, 20)
            for i in range(4):
                assert create(f"while {slow} is behind {i}")[0] == 201
            wait_for(lambda: _spaces_run(running) == {slow: 1, fast: 4}, 20)
            with _starved(running.nodes[fast]):
                wait_for(
                    lambda: _metric(running.workers[0], "majlis_cluster_nodes_behind") == 2, 20
                )
                status, body = create("both behind")
                # Each runs what it runs: the cluster's room is the five it has.
                assert (status, body["error"]) == (503, "media_full"), body
                assert "(5)" in str(body["reason"]), body
                assert "running late" in str(body["reason"]), body
        # Caught up (ten seconds of punctual ticks): both take spaces again.
        wait_for(lambda: _metric(running.workers[0], "majlis_cluster_nodes_behind") == 0, 30)
        assert create("after")[0] == 201
        host.close()


@contextlib.contextmanager
def _starved(node: Server) -> Iterator[None]:
    """The node's media worker gets the CPU 40 ms in every 100 (stopped the rest), as on
    a machine with far more work than cores."""
    pid = int(_metric(node, "majlis_media_worker_pid"))
    done = threading.Event()

    def starve() -> None:
        while not done.is_set():
            os.kill(pid, signal.SIGSTOP)
            done.wait(0.06)
            os.kill(pid, signal.SIGCONT)
            done.wait(0.04)

    thread = threading.Thread(target=starve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        os.kill(pid, signal.SIGCONT)


def _metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return 0.0 if found is None else float(found.group(1))
