"""Composition root: the one place that builds every component and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from majlis import __version__
from majlis.api.accounts import AccountRoutes
from majlis.api.events import EventSocket
from majlis.api.http import json_response
from majlis.api.listeners import ListenerRoutes
from majlis.api.metrics import metrics_route
from majlis.api.middleware import BodyLimit, RateLimit, RateLimits, retry_headers
from majlis.api.pages import web_routes
from majlis.api.playback import PlaybackGuard
from majlis.api.roles import RoleRoutes
from majlis.api.routing import Endpoint, openapi, routes
from majlis.api.rtc import RtcRoutes
from majlis.api.spaces import SpaceRoutes
from majlis.bus import open_bus
from majlis.bus.base import Bus, Subscription
from majlis.clock import Clock, SystemClock
from majlis.config import Config
from majlis.errors import MajlisError
from majlis.media.mixer import Levels
from majlis.media.node import MediaNode, NodeSettings
from majlis.media.origin import SpaceRegistry, create_origin
from majlis.media.process import MediaProcess
from majlis.services.accounts import Accounts
from majlis.services.auth import Authenticator
from majlis.services.events import Events
from majlis.services.listeners import ListenerPolicy, Listeners
from majlis.services.roles import Roles
from majlis.services.rtc import Rtc
from majlis.services.spaces import Spaces
from majlis.services.tokens import TokenService
from majlis.store import open_store
from majlis.store.base import Store
from majlis.types import MEDIA_CHANNEL, SpaceState, level_key

__all__ = ["Services", "build_app", "build_services", "load_secret"]

log = logging.getLogger("majlis")


@dataclass(frozen=True)
class Services:
    config: Config
    clock: Clock
    store: Store
    bus: Bus
    tokens: TokenService
    auth: Authenticator
    events: Events
    accounts: Accounts
    spaces: Spaces
    roles: Roles
    listeners: Listeners
    rtc: Rtc
    registry: SpaceRegistry
    media: MediaNode | MediaProcess | None


def load_secret(config: Config) -> bytes:
    """The configured secret, or one generated once and kept in the data directory."""
    if config.secret_key:
        return config.secret_key.encode()
    path = config.data_dir / "secret.key"
    if not path.exists():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def build_services(config: Config, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    store = open_store(config.effective_database_url)
    bus = open_bus(config.bus_url)
    tokens = TokenService(load_secret(config), clock)
    auth = Authenticator(tokens, bus)
    events = Events(bus, clock)
    spaces = Spaces(store, events, clock, config.state_cache_seconds)
    policy = ListenerPolicy(
        admission_rate=config.admission_rate,
        admission_burst=config.admission_burst,
        playback_ttl=config.playback_ttl,
        presence_window=config.presence_window,
        reaction_rate=config.reaction_rate,
        reaction_burst=config.reaction_burst,
        media_url=config.media_url,
        edge_stream=bool(config.edge_url) and config.edge_stream,
    )
    registry = SpaceRegistry(config.recordings_dir)
    media: MediaNode | MediaProcess | None = None
    if config.media:
        settings = NodeSettings(
            recordings_root=config.recordings_dir,
            part_seconds=config.part_seconds,
            segment_seconds=config.segment_seconds,
            bitrate=config.audio_bitrate,
        )
        # A child process by default: the mixer must not share a GIL with HTTP serving.
        media = (
            MediaProcess(settings, registry)
            if config.media_process
            else MediaNode(settings, registry)
        )
    return Services(
        config=config,
        clock=clock,
        store=store,
        bus=bus,
        tokens=tokens,
        auth=auth,
        events=events,
        accounts=Accounts(store, tokens, auth, clock, session_ttl=config.session_ttl),
        spaces=spaces,
        roles=Roles(store, bus, spaces, events, clock),
        listeners=Listeners(store, bus, spaces, tokens, clock, policy, config.state_cache_seconds),
        rtc=Rtc(store, spaces, media),
        registry=registry,
        media=media,
    )


def api_endpoints(s: Services) -> list[Endpoint]:
    public_url = s.config.effective_public_url
    return [
        *AccountRoutes(
            s.accounts, s.auth, secure_cookies=public_url.startswith("https")
        ).endpoints(),
        *SpaceRoutes(
            s.spaces, s.listeners, s.auth, public_url, s.config.state_cache_seconds
        ).endpoints(),
        *RoleRoutes(s.roles, s.auth).endpoints(),
        *ListenerRoutes(s.listeners, s.auth).endpoints(),
        *RtcRoutes(s.rtc, s.auth).endpoints(),
    ]


def build_app(services: Services, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    endpoints = api_endpoints(services)
    document = openapi(endpoints, "Majlis", __version__)

    async def openapi_json(request: Request) -> Response:
        return json_response(document)

    async def health(request: Request) -> Response:
        return json_response({"ok": True, "version": __version__})

    config = services.config
    limits = RateLimits(
        config.write_rate_ip,
        config.write_burst_ip,
        config.write_rate_user,
        config.write_burst_user,
        config.auth_rate_ip,
        config.auth_burst_ip,
    )
    event_socket = EventSocket(
        services.roles, services.events, services.auth, config.max_ws_per_user
    )
    app_routes: list[BaseRoute] = [
        *routes(endpoints),
        event_socket.route(),
        Route("/openapi.json", openapi_json),
        Route("/healthz", health),
        metrics_route([services.media.metrics] if services.media else []),
        *web_routes(_node_modules(config), _origin_of(config.edge_url)),
        Mount(
            "/hls",
            app=PlaybackGuard(
                create_origin(services.registry), services.spaces, services.tokens, services.bus
            ),
        ),
        *(extra_routes or []),
    ]
    middleware = [
        Middleware(BodyLimit, max_bytes=config.max_body_bytes),  # type: ignore[arg-type]
        Middleware(
            RateLimit,  # type: ignore[arg-type]
            bus=services.bus,
            tokens=services.tokens,
            clock=services.clock,
            limits=limits,
            is_auth_path=lambda path: path in ("/api/v1/auth/register", "/api/v1/auth/login"),
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.store.open()
        await services.bus.open()
        try:
            async with _media_running(services):
                yield
        finally:
            await services.bus.close()
            await services.store.close()

    return Starlette(
        routes=app_routes,
        middleware=middleware,
        exception_handlers={
            MajlisError: _majlis_error,  # type: ignore[dict-item]
            HTTPException: _http_error,  # type: ignore[dict-item]
            Exception: _server_error,
        },
        lifespan=lifespan,
    )


@contextlib.asynccontextmanager
async def _media_running(services: Services) -> AsyncIterator[None]:
    """Run the embedded media node: follow bus commands, resume spaces that are live."""
    media = services.media
    if media is None:
        yield
        return
    media.on_levels = _levels_publisher(services.bus, asyncio.get_running_loop())

    async def resume() -> None:
        for space in await services.store.list_spaces(
            state=SpaceState.LIVE,
            query=None,
            host_id=None,
            include_unlisted=True,
            limit=10_000,
            offset=0,
        ):
            await media.start_space(space.id, space.started_at or space.created_at)

    # Subscribed before resuming, so a start published meanwhile is not missed.
    commands = await services.bus.subscribe(MEDIA_CHANNEL)
    follower = asyncio.create_task(_follow(media, commands))
    try:
        # A media process resumes again after every restart of its worker.
        await media.start(resume)
        yield
    finally:
        follower.cancel()
        await commands.close()
        await media.stop()


async def _follow(node: MediaNode | MediaProcess, commands: Subscription) -> None:
    async for command in commands:
        try:
            await node.handle(command)
        except Exception:
            log.exception("media command %r failed", command)


def _levels_publisher(bus: Bus, loop: asyncio.AbstractEventLoop) -> Callable[[str, Levels], None]:
    """Levels arrive on the media loop; the bus belongs to the HTTP loop."""

    def publish(space_id: str, levels: Levels) -> None:
        for user_id, (db, speaking) in levels.items():
            value = f"{db:.1f},{1 if speaking else 0}"
            asyncio.run_coroutine_threadsafe(
                bus.set_value(level_key(space_id, user_id), value, 2.0), loop
            )

    return publish


async def _majlis_error(request: Request, exc: MajlisError) -> Response:
    return json_response(exc.body(), exc.status, retry_headers(exc) or None)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    reason = {404: "no such endpoint", 405: "method not allowed here"}.get(
        exc.status_code, str(exc.detail)
    )
    return json_response(
        {"error": "http_error", "reason": reason}, exc.status_code, dict(exc.headers or {})
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response({"error": "internal", "reason": "internal error"}, 500)


def _origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, for the pages' Content-Security-Policy."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _node_modules(config: Config) -> Path | None:
    """Where npm installed hls.js: configured, else the checkout (editable install), else
    the working directory."""
    if config.node_modules:
        return Path(config.node_modules)
    for folder in (
        Path(__file__).resolve().parents[2] / "node_modules",
        Path.cwd() / "node_modules",
    ):
        if (folder / "hls.js").is_dir():
            return folder
    return None
