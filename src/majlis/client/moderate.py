"""`majlis moderate`: a site moderator's desk on the command line, over the HTTP API.
Each command prints plain lines, one per report, appeal or result."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from majlis.client.api import ApiClient

__all__ = ["DESK_COMMANDS", "DeskCommand", "run_desk"]

DESK = "/api/v1/moderation"

# command -> what it does, for the CLI's help
DESK_COMMANDS = {
    "reports": "list open reports, oldest first",
    "decide": "decide a report: dismiss, warn, remove, end or suspend (--days)",
    "suspend": "suspend an account for --days",
    "lift": "lift a suspension early",
    "appeals": "list open appeals, oldest first",
    "review": "decide an appeal: upheld or reversed (not your own decision's)",
}


@dataclass(frozen=True, slots=True)
class DeskCommand:
    name: str
    target: str | None = None  # a report id, appeal id or username
    outcome: str | None = None  # a decision, or upheld | reversed
    category: str = "other"
    reason: str | None = None
    days: float | None = None


async def run_desk(client: ApiClient, command: DeskCommand) -> list[str]:
    """Run one command as the logged-in moderator; the lines to print."""
    name, target = command.name, command.target or ""
    if name == "reports":
        answer = await client.call("GET", f"{DESK}/reports")
        return [_report_line(r) for r in answer["reports"]] or ["no open reports"]
    if name == "appeals":
        answer = await client.call("GET", f"{DESK}/appeals")
        return [_appeal_line(a) for a in answer["appeals"]] or ["no open appeals"]
    if name == "decide":
        body = _decision(command)
        report = await client.call("POST", f"{DESK}/reports/{target}/decision", body)
        return [f"report {report['id']}: {report['decision']}"]
    if name == "review":
        body = {"outcome": command.outcome, "reason": command.reason}
        appeal = await client.call("POST", f"{DESK}/appeals/{target}/decision", body)
        return [f"appeal {appeal['id']}: {appeal['outcome']}"]
    if name == "suspend":
        body = {
            "username": target,
            "until": _until(command.days),
            "category": command.category,
            "reason": command.reason,
        }
        await client.call("POST", f"{DESK}/suspensions", body)
        return [f"{target} suspended until {_when(body['until'])}"]
    if name == "lift":
        await client.call(
            "POST", f"{DESK}/suspensions/lift", {"username": target, "reason": command.reason}
        )
        return [f"{target}'s suspension lifted"]
    raise ValueError(f"unknown desk command {name!r}")


def _decision(command: DeskCommand) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": command.outcome,
        "category": command.category,
        "reason": command.reason,
    }
    if command.outcome == "suspend":
        body["until"] = _until(command.days)
    return body


def _until(days: float | None) -> float:
    if days is None:
        raise ValueError("a suspension needs --days")
    return time.time() + days * 86400


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="minutes")


def _report_line(r: dict[str, Any]) -> str:
    about = r["user_id"] or r["clip_id"] or r["space_id"]
    text = f" {r['text']!r}" if r["text"] else ""
    return f"{r['id']}  {_when(r['created_at'])}  {r['subject']} {about}  {r['category']}{text}"


def _appeal_line(a: dict[str, Any]) -> str:
    return f"{a['id']}  {_when(a['created_at'])}  notice {a['notice_id']}  {a['text']!r}"
