"""The event socket for people who act in a space (host, co-hosts, speakers, people asking
to speak or invited). Everyone else polls the state document, so listeners cost no socket.

Close codes: 4401 no valid token, 4403 not allowed (or removed), 4404 no such space,
4409 the space has ended, 4429 too many sockets for this user.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from majlis.api.http import caller_of, client_ip
from majlis.api.routing import check_path_ids
from majlis.errors import Conflict, Forbidden, MajlisError, NotFound, Unauthorized
from majlis.services.auth import Authenticator
from majlis.services.events import Events, visible_to
from majlis.services.roles import Roles
from majlis.types import BusMessage, Role

__all__ = ["EventSocket"]

PATH = "/api/v1/spaces/{space_id}/events"
_CLOSE = {Unauthorized: 4401, Forbidden: 4403, NotFound: 4404, Conflict: 4409}


class EventSocket:
    def __init__(
        self, roles: Roles, events: Events, auth: Authenticator, per_user: int, per_ip: int
    ) -> None:
        self._roles = roles
        self._events = events
        self._auth = auth
        self._per_user = per_user
        self._per_ip = per_ip
        # Open sockets on this worker, by user and by address: one address with many
        # accounts must not hold thousands either.
        self._open: Counter[str] = Counter()
        self._by_ip: Counter[str] = Counter()

    def open_count(self) -> int:
        """Event sockets open on this worker now."""
        return sum(self._open.values())

    def route(self) -> WebSocketRoute:
        return WebSocketRoute(PATH, self.handle)

    async def handle(self, websocket: WebSocket) -> None:
        space_id = websocket.path_params["space_id"]
        try:
            user_id, role = await self._admit(websocket, space_id)
        except MajlisError as exc:
            # Accept first: a close before the handshake completes reaches the client as a
            # bare HTTP 403, and the close code and reason that say why would be lost.
            await websocket.accept()
            await websocket.close(code=_close_code(exc), reason=exc.reason[:120])
            return
        ip = client_ip(websocket)
        self._open[user_id] += 1
        self._by_ip[ip] += 1
        try:
            await websocket.accept()
            await self._serve(websocket, space_id, user_id, role)
        finally:
            _release(self._open, user_id)
            _release(self._by_ip, ip)

    async def _admit(self, websocket: WebSocket, space_id: str) -> tuple[str, Role]:
        check_path_ids(websocket.path_params)
        token = websocket.query_params.get("token")
        if token:
            caller = await self._auth.caller(token, client_ip(websocket))
        else:
            caller = await caller_of(websocket, self._auth)
        user_id, role = await self._roles.watcher(caller, space_id)
        if self._open[user_id] >= self._per_user:
            raise _TooMany(f"at most {self._per_user} event sockets per user")
        if self._by_ip[client_ip(websocket)] >= self._per_ip:
            raise _TooMany(f"at most {self._per_ip} event sockets per address")
        return user_id, role

    async def _serve(self, websocket: WebSocket, space_id: str, user_id: str, role: Role) -> None:
        # Subscribe before the snapshot so nothing that happens in between is missed.
        subscription = await self._events.subscribe(space_id)
        reader = asyncio.create_task(_read_client(websocket))
        try:
            await websocket.send_bytes(orjson.dumps(await self._hello(space_id, role)))
            await self._replay_invite(websocket, space_id, user_id)
            await self._forward(websocket, subscription.__aiter__(), reader, user_id, role)
        finally:
            reader.cancel()
            await subscription.close()

    async def _forward(
        self,
        websocket: WebSocket,
        events: AsyncIterator[BusMessage],
        reader: asyncio.Task[None],
        user_id: str,
        role: Role,
    ) -> None:
        while True:
            pending = asyncio.ensure_future(events.__anext__())
            done, _ = await asyncio.wait({pending, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                pending.cancel()
                return
            message = pending.result()
            role = _role_after(message, user_id, role)
            if visible_to(message, user_id, role.can_moderate):
                await websocket.send_bytes(orjson.dumps(message))
            if _ends_socket(message, user_id):
                code = 1000 if message["type"] == "space_ended" else 4403
                await websocket.close(code=code, reason=str(message["type"]))
                return

    async def _replay_invite(self, websocket: WebSocket, space_id: str, user_id: str) -> None:
        """A listener holds no socket until invited, so the live 'invited' event reaches
        them only if they happened to be connected: repeat a pending invitation on connect."""
        invite = await self._roles.pending_invite(space_id, user_id)
        if invite is None:
            return
        message: BusMessage = {
            "type": "invited",
            "space_id": space_id,
            "to": user_id,
            "at": invite.created_at,
            "data": {"user_id": user_id, "by": invite.invited_by},
        }
        await websocket.send_bytes(orjson.dumps(message))

    async def _hello(self, space_id: str, role: Role) -> dict[str, object]:
        stage = await self._roles.stage(space_id)
        return {
            "type": "hello",
            "space_id": space_id,
            "role": str(role),
            "participants": [
                {
                    "user_id": p.user_id,
                    "username": p.username,
                    "role": str(p.role),
                    "muted": p.muted,
                }
                for p in stage
            ],
        }


class _TooMany(MajlisError):
    status = 429
    code = "too_many_sockets"


def _close_code(exc: MajlisError) -> int:
    if isinstance(exc, _TooMany):
        return 4429
    return next((code for kind, code in _CLOSE.items() if isinstance(exc, kind)), 4400)


def _role_after(message: BusMessage, user_id: str, role: Role) -> Role:
    data = message.get("data")
    changed = message.get("type") == "role_changed" and isinstance(data, dict)
    if changed and isinstance(data, dict) and data.get("user_id") == user_id:
        return Role(str(data.get("role")))
    return role


def _ends_socket(message: BusMessage, user_id: str) -> bool:
    data = message.get("data")
    if message.get("type") == "space_ended":
        return True
    return (
        message.get("type") == "removed"
        and isinstance(data, dict)
        and data.get("user_id") == user_id
    )


async def _read_client(websocket: WebSocket) -> None:
    """Answer pings; return when the client goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            text = await websocket.receive_text()
            if text == "ping":
                await websocket.send_text("pong")


def _release(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
