"""/metrics parses with prometheus_client's own parser, every family has its HELP and
TYPE, and the new figures move as the traffic does (issue 16): HTTP requests by route
template and status with a latency histogram, joins by outcome, listeners per space,
event sockets."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from api.conftest import Harness, running_harness
from majlis.api.metrics import HELP

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "majlis.json"


async def scrape(h: Harness) -> dict[str, object]:
    answer = await h.client("127.0.0.1").get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(answer.text)}


def value(families: dict[str, object], name: str, **labels: str) -> float:
    family = families[name]
    found = [
        s.value
        for s in family.samples  # type: ignore[attr-defined]
        if s.name.startswith(name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert found, (name, labels)
    return float(found[0])


async def test_metrics_are_typed_described_and_count_the_traffic(tmp_path: Path) -> None:
    async with running_harness(tmp_path, admission_rate=1.0, admission_burst=1) as h:
        h.clock.freeze()
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        first, second = await h.anonymous(), await h.anonymous()
        admitted = await h.call("POST", f"/spaces/{sid}/join", first, json={})
        queued = await h.call("POST", f"/spaces/{sid}/join", second, json={})
        refused = await h.call("POST", "/spaces/nosuchspace/join", second, json={})
        for _ in range(3):
            await h.call("GET", f"/spaces/{sid}")
        families = await scrape(h)
        outsider = await h.client("203.0.113.9").get("/metrics")

    assert (admitted.status_code, queued.status_code, refused.status_code) == (200, 202, 404)
    for name, family in families.items():
        assert family.type in ("counter", "gauge", "histogram"), name  # type: ignore[attr-defined]
        assert family.documentation and family.documentation != name, name  # type: ignore[attr-defined]
    one = "/api/v1/spaces/{space_id}"
    assert value(families, "majlis_http_requests", route=one, method="GET", status="200") == 3
    join = f"{one}/join"
    assert value(families, "majlis_http_requests", route=join, status="202") == 1
    buckets = families["majlis_http_request_duration_seconds"].samples  # type: ignore[attr-defined]
    counted = [s for s in buckets if s.name.endswith("_count") and s.labels["route"] == one]
    assert counted and counted[0].value == 3
    for outcome in ("admitted", "queued", "refused"):
        assert value(families, "majlis_joins", outcome=outcome) == 1
    assert value(families, "majlis_listeners", space=sid) == 1  # the queued one is not in yet
    assert value(families, "majlis_waiting_room_depth", space=sid) == 1
    assert value(families, "majlis_event_sockets") == 0
    assert outsider.status_code == 404


def test_the_grafana_dashboard_asks_only_for_metrics_we_serve() -> None:
    """docs/grafana/majlis.json: every metric its panels query is one /metrics serves."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    served = set(HELP) | {
        "majlis_http_requests_total",
        "majlis_http_request_duration_seconds_bucket",
        "majlis_joins_total",
    }
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:majlis|process)_[a-z_]+)", target["expr"])
    }
    assert len(dashboard["panels"]) >= 8
    assert asked and asked <= served, asked - served


def test_every_sample_the_code_names_is_described() -> None:
    """The media plane's samples only show up with a running node: the names written in
    the code are checked here instead, so none reaches an operator without its HELP."""
    source = Path(__file__).parents[2] / "src" / "majlis"
    named = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r'\(\s*"((?:majlis|process)_[a-z0-9_]+)"', path.read_text())
    }
    own = {"majlis_http_requests", "majlis_http_request_duration_seconds", "majlis_joins"}
    assert len(named) >= 20
    assert named - own <= set(HELP), named - own - set(HELP)
