"""Media commands cross the bus and the worker's channel as JSON: every command survives
the trip, and anything else is refused loudly instead of being ignored."""

from __future__ import annotations

import json

import pytest

from majlis.plane import (
    Captions,
    CloseSpace,
    Disconnect,
    EndSpace,
    HandOver,
    MediaCommand,
    SetCaptions,
    SetMuted,
    StandBy,
    StartSpace,
    UnknownCommand,
    decode_command,
    encode_command,
)

COMMANDS: list[MediaCommand] = [
    StartSpace("s1", 1700000000.25),
    StartSpace("s1", 1700000000.25, Captions(on=False, language="ar")),
    EndSpace("s1"),
    EndSpace("s1", keep=False),
    CloseSpace("s1"),
    HandOver("s1"),
    StandBy("s1", 1700000000.5),
    StandBy("s1", 1700000000.5, {"u1": 0.185, "u2": 0.06}),
    SetMuted("s1", "u1", True),
    SetMuted("s1", "u1", False),
    Disconnect("s1", "u1"),
    SetCaptions("s1", on=False),
    SetCaptions("s1", on=True, language="ar"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=repr)
def test_every_command_survives_the_wire(command: MediaCommand) -> None:
    assert decode_command(json.loads(json.dumps(encode_command(command)))) == command


@pytest.mark.parametrize(
    "message",
    [
        {"cmd": "explode", "space_id": "s1"},
        {"space_id": "s1"},
        {"cmd": "end"},
        {"cmd": "end", "space_id": ""},
        {"cmd": "end", "space_id": 7},
        {"cmd": "end", "space_id": "s1", "keep": "no"},
        {"cmd": "start", "space_id": "s1"},
        {"cmd": "start", "space_id": "s1", "started_at": "soon"},
        {"cmd": "start", "space_id": "s1", "started_at": True},
        {"cmd": "standby", "space_id": "s1"},
        {"cmd": "standby", "space_id": "s1", "started_at": 1.0, "delays": [0.1]},
        {"cmd": "standby", "space_id": "s1", "started_at": 1.0, "delays": {"u1": "deep"}},
        {"cmd": "standby", "space_id": "s1", "started_at": 1.0, "delays": {"u1": -0.1}},
        {"cmd": "standby", "space_id": "s1", "started_at": 1.0, "delays": {"u1": True}},
        {"cmd": "standby", "space_id": "s1", "started_at": 1.0, "delays": {"u1": float("nan")}},
        {"cmd": "handover"},
        {"cmd": "mute", "space_id": "s1"},
        {"cmd": "disconnect", "space_id": "s1", "user_id": None},
        {"cmd": "captions", "space_id": "s1", "language": "en"},
        {"cmd": "captions", "space_id": "s1", "on": 1, "language": "en"},
        {"cmd": "captions", "space_id": "s1", "on": True, "language": "fr"},
        {"cmd": "captions", "space_id": "s1", "on": True},
        {"cmd": "start", "space_id": "s1", "started_at": 1.0, "captions": True},
        {"cmd": "start", "space_id": "s1", "started_at": 1.0, "captions": {"on": False}},
    ],
    ids=repr,
)
def test_anything_else_is_refused_by_name(message: dict[str, object]) -> None:
    with pytest.raises(UnknownCommand):
        decode_command(message)
