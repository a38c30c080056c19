"""`majlis moderate`: the operator grants the moderator role on the server's database;
moderators list reports, decide them, suspend and lift, and review appeals, against a
running server. A refusal is one line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from e2e.harness import PASSWORD, Api, Server, running_server

MAJLIS = str(Path(sys.executable).with_name("majlis"))


def majlis(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAJLIS_PASSWORD": PASSWORD, "MAJLIS_SERVER": server.url}
    return subprocess.run(
        [MAJLIS, "moderate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def desk(server: Server, moderator: str, command: str, *args: str) -> str:
    done = majlis(server, command, "--user", moderator, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_moderator_works_the_desk_from_the_command_line(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", media="false") as server:
        api = Api(server)
        for name in ("host", "lina", "omar", "mod1", "mod2"):
            api.register(name)
        for name in ("mod1", "mod2"):
            granted = majlis(server, "grant", name, "--data-dir", str(server.data_dir))
            assert granted.returncode == 0, granted.stderr
            assert granted.stdout.strip() == f"{name} is a site moderator"
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Desk night"})["id"]
        body = {"subject": "space", "space_id": sid, "category": "spam", "text": "link spam"}
        rid = api.ok("omar", "POST", "/api/v1/reports", body)["id"]

        listed = desk(server, "mod1", "reports")
        decided = desk(server, "mod1", "decide", rid, "warn", "--reason", "links in title")
        suspended = desk(server, "mod1", "suspend", "lina", "--days", "2", "--category", "spam")
        refused = api.call("lina", "POST", "/api/v1/spaces", {"title": "more spam"})
        [notice] = api.ok("lina", "GET", "/api/v1/notices")["notices"]
        aid = api.ok("lina", "POST", f"/api/v1/notices/{notice['id']}/appeal", {"text": "hacked"})[
            "id"
        ]
        appeals = desk(server, "mod2", "appeals")
        own = majlis(server, "review", "--user", "mod1", aid, "reversed")
        reviewed = desk(server, "mod2", "review", aid, "reversed", "--reason", "account hacked")
        back = api.call("lina", "POST", "/api/v1/spaces", {"title": "hello again"})
        not_mod = majlis(server, "reports", "--user", "host")
        no_days = majlis(server, "suspend", "--user", "mod1", "lina")
        api.close()

    assert rid in listed and "link spam" in listed
    assert decided.strip() == f"report {rid}: warn"
    assert suspended.startswith("lina suspended until ")
    assert refused.status_code == 403
    assert notice["action"] == "suspend"
    assert aid in appeals and "hacked" in appeals
    assert own.returncode == 1 and "same_moderator" not in own.stderr
    assert own.stderr.startswith("majlis: server said 403: an appeal is reviewed by a moderator")
    assert reviewed.strip() == f"appeal {aid}: reversed"
    assert back.status_code == 201
    for failed in (not_mod, no_days):
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "only site moderators" in not_mod.stderr
    assert "needs --days" in no_days.stderr
