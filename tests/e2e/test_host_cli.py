"""`majlis space approve|invite|mute|remove|edit`: a host's bot acts by username against a
running server (issue 15). Each action lands as the API's would, with its audit entry and
reason; a name that is nowhere in the space is one line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from e2e.harness import PASSWORD, Api, running_server

MAJLIS = str(Path(sys.executable).with_name("majlis"))


def host_cli(server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAJLIS_PASSWORD": PASSWORD, "MAJLIS_SERVER": server_url}
    return subprocess.run(
        [MAJLIS, "space", *args[:1], "--user", "host", *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_bot_moderates_by_username(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", media="false") as server:
        api = Api(server)
        for name in ("host", "sami", "lina"):
            api.register(name)
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Bot night"})["id"]
        api.ok("sami", "POST", f"/api/v1/spaces/{sid}/requests")
        api.ok("lina", "POST", f"/api/v1/spaces/{sid}/join", {})
        steps = [
            host_cli(server.url, "approve", sid, "sami"),
            host_cli(server.url, "mute", sid, "Sami", "--reason", "echo on the line"),
            host_cli(server.url, "invite", sid, "lina"),
            host_cli(
                server.url,
                "remove",
                sid,
                "lina",
                "--ban",
                "--reason",
                "spam links",
                "--category",
                "spam",
            ),
            host_cli(server.url, "edit", sid, "--title", "Bot night, edited"),
        ]
        nobody = host_cli(server.url, "mute", sid, "nobody_here")
        stage = api.ok("host", "GET", f"/api/v1/spaces/{sid}/participants")["participants"]
        audit = api.ok("host", "GET", f"/api/v1/spaces/{sid}/audit")["entries"]
        title = api.ok("host", "GET", f"/api/v1/spaces/{sid}")["title"]
        rejoin = api.call("lina", "POST", f"/api/v1/spaces/{sid}/join", {})
        api.close()

    for step in steps:
        assert step.returncode == 0, step.stderr
    sami = next(p for p in stage if p["username"] == "sami")
    assert (sami["role"], sami["muted"]) == ("speaker", True)
    actions = {(e["action"], e["target_username"]): e["reason"] for e in audit}
    assert actions[("approve", "sami")] == ""
    assert actions[("mute", "sami")] == "echo on the line"
    assert ("invite", "lina") in actions
    assert actions[("ban", "lina")] == "spam links"
    assert actions[("edit", "")] == "title"
    assert title == "Bot night, edited"
    assert rejoin.status_code == 403  # banned
    assert nobody.returncode == 1
    assert "Traceback" not in nobody.stderr
    assert nobody.stderr.strip().splitlines() == [
        f"majlis: nobody_here is not on stage, asking to speak or listening in {sid}"
    ]
