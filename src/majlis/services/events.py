"""Space events on the bus: who should see them, and the channels the media node reads."""

from __future__ import annotations

from typing import Literal

from majlis.bus.base import Bus, Subscription
from majlis.clock import Clock
from majlis.plane import MediaCommand, encode_command
from majlis.types import MEDIA_CHANNEL, BusMessage

__all__ = ["MEDIA_CHANNEL", "Audience", "Events", "space_channel"]


Audience = Literal["all", "moderators"] | str  # or one user id


def space_channel(space_id: str) -> str:
    return f"space:{space_id}"


class Events:
    def __init__(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    async def emit(self, space_id: str, kind: str, to: Audience, **data: object) -> None:
        message: BusMessage = {
            "type": kind,
            "space_id": space_id,
            "to": to,
            "at": self._clock.now(),
            "data": data,
        }
        await self._bus.publish(space_channel(space_id), message)

    async def media(self, command: MediaCommand) -> None:
        await self._bus.publish(MEDIA_CHANNEL, encode_command(command))

    async def subscribe(self, space_id: str) -> Subscription:
        return await self._bus.subscribe(space_channel(space_id))


def visible_to(message: BusMessage, user_id: str, moderator: bool) -> bool:
    to = message.get("to")
    return to == "all" or to == user_id or (to == "moderators" and moderator)
