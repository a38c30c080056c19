"""The control channel between a speaker and the media node: a WebRTC data channel that
the speaker opens in its offer (label CONTROL_LABEL), carrying small JSON messages.

    node -> speaker  {"type": "move"}   this node hands the space over (a drain): offer
                                        again through the API, which now reaches the node
                                        taking over, and keep this connection meanwhile
    speaker -> node  {"type": "moved"}  the new connection carries audio both ways; this
                                        one may close

Sending to both nodes for that moment is what lets a drain lose no audio: the old node
closes its recording only once the new one hears every speaker who could be asked.
Speakers without the channel (older clients) are simply cut when the old node closes,
and reconnect as after any loss.
"""

from __future__ import annotations

import json
from typing import Literal

__all__ = ["CONTROL_LABEL", "ControlMessage", "encode_control", "parse_control"]

CONTROL_LABEL = "majlis"
ControlMessage = Literal["move", "moved"]
_MAX_MESSAGE = 1024


def encode_control(kind: ControlMessage) -> str:
    return json.dumps({"type": kind})


def parse_control(message: object) -> ControlMessage | None:
    """The message's type, or None for anything this version does not know (ignored: a
    newer peer may say more)."""
    if not isinstance(message, str) or len(message) > _MAX_MESSAGE:
        return None
    try:
        wire = json.loads(message)
    except ValueError:
        return None
    kind = wire.get("type") if isinstance(wire, dict) else None
    if kind == "move":
        return "move"
    if kind == "moved":
        return "moved"
    return None
