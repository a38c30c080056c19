"""Composition root: the one place that builds every component and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from majlis import __version__
from majlis.api.accounts import AccountRoutes
from majlis.api.appeals import AppealRoutes
from majlis.api.audience import AudienceRoutes
from majlis.api.audit import AuditRoutes
from majlis.api.avatars import AvatarRoutes
from majlis.api.client_address import ClientAddress, TrustedProxies
from majlis.api.clips import ClipRoutes
from majlis.api.concurrency import RequestsPerAddress
from majlis.api.events import EventSocket
from majlis.api.guests import GuestRoutes
from majlis.api.http import json_response
from majlis.api.listeners import ListenerRoutes
from majlis.api.metrics import HttpMetrics, Metrics, metrics_route
from majlis.api.middleware import BodyLimit, RateLimit, RateLimits, retry_headers
from majlis.api.moderation import ModerationRoutes
from majlis.api.notices import NoticeRoutes
from majlis.api.notifications import NotificationRoutes
from majlis.api.overload import LoopLag, Shedding, ShedWrites, is_join_path
from majlis.api.overview import OverviewRoutes
from majlis.api.pages import web_routes
from majlis.api.playback import PlaybackGuard
from majlis.api.replays import ReplayRoutes
from majlis.api.reports import ReportRoutes
from majlis.api.roles import RoleRoutes
from majlis.api.route_index import IndexedRoutes
from majlis.api.routing import Endpoint, openapi, routes
from majlis.api.rtc import RtcRoutes
from majlis.api.shed_share import ShedShare
from majlis.api.spaces import SpaceRoutes
from majlis.api.transcripts import TranscriptRoutes
from majlis.bus import open_bus
from majlis.bus.base import Bus
from majlis.clock import Clock, SystemClock
from majlis.cluster import ClusterOrigin, RemoteMedia
from majlis.config import Config, ConfigError
from majlis.errors import MajlisError, NotFound
from majlis.media.captions.model import ModelNotFound, model_languages, resolve_model
from majlis.media.captions.replay_source import OriginTranscriber
from majlis.media.hls.clip_source import OriginClips
from majlis.media.hls.origin import SpaceRegistry, create_origin
from majlis.media.recording.removal import RecordingRemoval
from majlis.media.recording.storage import StorageSettings, open_object_store
from majlis.media.runtime.membership import Membership, publish_captions, publish_levels
from majlis.media.runtime.node import MediaNode, NodeSettings
from majlis.media.runtime.node_api import node_routes
from majlis.media.runtime.process import MediaProcess
from majlis.plane import Capacity, MediaPlane, NodeInfo, Room, Sample, follow_commands
from majlis.services.accounts import Accounts, PasswordHashing
from majlis.services.admission import AdmissionControl, AdmissionSettings
from majlis.services.appeals import Appeals
from majlis.services.audience import Audience
from majlis.services.audit import AuditLog
from majlis.services.auth import Authenticator
from majlis.services.avatars import Avatars
from majlis.services.clips import ClipPolicy, Clips
from majlis.services.continuity import Continuity, ContinuityPolicy
from majlis.services.events import Events
from majlis.services.guests import Guests
from majlis.services.listeners import ListenerPolicy, Listeners
from majlis.services.mail import Mailer, SmtpSettings
from majlis.services.moderation import Restrictions
from majlis.services.moderators import Moderators
from majlis.services.notices import Notices
from majlis.services.notifications import Notifications
from majlis.services.overview import Overview
from majlis.services.placement import Reconciler
from majlis.services.reminders import Reminders
from majlis.services.replays import Replays
from majlis.services.reports import ReportPolicy, Reports
from majlis.services.retrying import Backoff
from majlis.services.roles import Roles
from majlis.services.rtc import Rtc
from majlis.services.schedule import MissedSpaces
from majlis.services.security import SecurityState
from majlis.services.spaces import Spaces
from majlis.services.suspensions import Suspensions
from majlis.services.tokens import TokenService
from majlis.services.transcripts import Transcripts
from majlis.services.webhook import Webhook
from majlis.serving import ConnectionHolds, Door
from majlis.signing import NODE, compact_key
from majlis.store import open_store
from majlis.store.base import Store
from majlis.types import MEDIA_CHANNEL

__all__ = [
    "Services",
    "build_app",
    "build_node_app",
    "build_services",
    "load_secret",
    "storage_settings",
]

log = logging.getLogger("majlis")

# How often a worker checks that the bus still holds the security state (a Redis restart
# empties it): the longest a restored Redis may miss an older ban or logout.
SECURITY_CHECK_SECONDS = 2.0


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
    avatars: Avatars
    replays: Replays
    spaces: Spaces
    roles: Roles
    audit: AuditLog
    notices: Notices
    moderators: Moderators
    guests: Guests
    reports: Reports
    appeals: Appeals
    suspensions: Suspensions
    listeners: Listeners
    rtc: Rtc
    registry: SpaceRegistry
    media: MediaPlane | None  # what the control plane commands: local, or the cluster
    plane: MediaPlane | None  # the media node in this process, if any
    cluster: RemoteMedia | None  # scaled mode: nodes found on the bus
    membership: Membership | None  # scaled mode with a node here: its place in the cluster
    security: SecurityState  # revocations and bans: SQL's copy back on the bus after restarts
    lag: LoopLag  # the event loop's delay: sheds writes
    door: Door | None  # writes past overload_writes_at_once wait here, unread
    shedding: Shedding  # which writes to refuse now, following `lag`
    admission: AdmissionControl  # the waiting room's rate, following `delay`
    origins: Origins  # HLS as this worker serves it (and cuts clips from)
    clip_audio: OriginClips
    clips: Clips
    replay_transcriber: OriginTranscriber | None  # None: no caption_model, captions off
    transcripts: Transcripts
    continuity: Continuity | None  # None without a media plane: no audio to judge by
    reminders: Reminders  # delivered when a scheduled space starts or is missed
    notifications: Notifications
    missed: MissedSpaces | None  # None: missed_after_s is 0, never marked
    audience: Audience  # listeners over time; samples only when audience_sample_s > 0
    overview: Overview  # the operator's page


@dataclass(frozen=True)
class Origins:
    """`local` serves this disk's (and the bucket's) recordings; `public` is what /hls and
    clips use: `local` itself, or in a cluster the proxy to whichever node has a space."""

    local: ASGIApp
    public: ASGIApp
    proxy: ClusterOrigin | None


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


def _door(config: Config) -> Door | None:
    """The door writes wait at past overload_writes_at_once; none without a target, for
    then nothing would refuse a write that waited too long."""
    if not (config.overload_writes_at_once and config.overload_target_ms):
        return None
    return Door(config.overload_writes_at_once)


def _delay(lag: LoopLag, door: Door | None) -> Callable[[], float]:
    """This worker's standing queueing delay: the loop's, or the door's, whichever is
    longer. A door keeps the loop calm through an overload; the wait moves to it."""
    if door is None:
        return lag.standing
    return lambda: max(lag.standing(), door.standing())


def build_services(
    config: Config,
    clock: Clock | None = None,
    lag: LoopLag | None = None,
    door: Door | None = None,
) -> Services:
    """Every service of a worker; `lag` replaces the event loop's own measure, `door` the
    configured one (tests)."""
    clock = clock or SystemClock()
    lag = lag or LoopLag()
    door = door or _door(config)
    delay = _delay(lag, door)
    model_dir = _caption_model(config)  # first: a bad setting stops us before anything starts
    store = open_store(config.effective_database_url)
    bus = open_bus(config.bus_url)
    tokens = TokenService(load_secret(config), clock)
    auth = Authenticator(tokens, bus, store)
    events = Events(bus, clock)
    registry = _registry(config)
    plane = _local_plane(config, registry, model_dir) if config.media else None
    media, cluster, membership = plane, None, None
    if config.scaled:
        if plane is not None:
            membership = _membership(config, plane, bus, clock)
        media = cluster = RemoteMedia(bus, clock, node_key_of(config), local=membership)
    origins = _origins(config, registry, cluster, membership)
    clip_audio = OriginClips(origins.public)
    replay_transcriber = None if model_dir is None else OriginTranscriber(origins.public, model_dir)
    transcripts = Transcripts(store, clock, replay_transcriber)
    reminders = _reminders(config, store, clock)
    spaces = Spaces(
        store,
        events,
        clock,
        config.state_cache_seconds,
        ended=transcripts.space_ended,
        started=reminders.started,
        capacity=_capacity(config, plane, cluster),
    )
    roles = Roles(store, bus, spaces, events, clock)
    moderators = Moderators(store, clock)
    audience = Audience(
        store,
        bus,
        spaces,
        clock,
        every_s=config.audience_sample_s,
        presence_window=config.presence_window,
        worker_id=_node_id(config),
    )
    restrictions = Restrictions(store, bus, spaces, roles, clock)
    admission = AdmissionControl(
        AdmissionSettings(
            ceiling=config.admission_rate,
            burst=config.admission_burst,
            floor=config.admission_min_rate,
            target_s=config.admission_target_ms / 1000,
        ),
        delay,
        clock,
    )
    policy = ListenerPolicy(
        playback_ttl=config.playback_ttl,
        presence_window=config.presence_window,
        reaction_rate=config.reaction_rate,
        reaction_burst=config.reaction_burst,
        media_url=config.media_url,
        edge_stream=bool(config.edge_url) and config.edge_stream,
        caption_languages=frozenset() if model_dir is None else model_languages(model_dir),
    )
    return Services(
        config=config,
        clock=clock,
        store=store,
        bus=bus,
        tokens=tokens,
        auth=auth,
        events=events,
        avatars=Avatars(store, clock),
        replays=Replays(
            store,
            spaces,
            RecordingRemoval(config.recordings_dir, open_object_store(storage_settings(config))),
            clock,
            tokens,
            config.media_url,
        ),
        accounts=Accounts(
            store,
            tokens,
            auth,
            clock,
            session_ttl=config.session_ttl,
            hashing=PasswordHashing(config.max_logins_waiting),
        ),
        spaces=spaces,
        roles=roles,
        audit=AuditLog(store, spaces, moderators),
        notices=Notices(store),
        moderators=moderators,
        guests=Guests(store, bus, spaces, clock),
        reports=Reports(store, bus, moderators, restrictions, clock, ReportPolicy()),
        appeals=Appeals(store, moderators, restrictions, clock),
        suspensions=Suspensions(store, moderators, restrictions, clock),
        listeners=Listeners(
            store, bus, spaces, tokens, clock, policy, admission, config.state_cache_seconds
        ),
        rtc=Rtc(store, spaces, media),
        registry=registry,
        media=media,
        plane=plane,
        cluster=cluster,
        membership=membership,
        security=SecurityState(store, bus, clock, SECURITY_CHECK_SECONDS),
        lag=lag,
        door=door,
        shedding=Shedding(lag, _shed_share(config), spare=is_join_path),
        admission=admission,
        origins=origins,
        clip_audio=clip_audio,
        clips=Clips(
            store,
            spaces,
            clip_audio,
            bus,
            clock,
            ClipPolicy(rate=config.clip_rate, burst=config.clip_burst),
        ),
        replay_transcriber=replay_transcriber,
        transcripts=transcripts,
        continuity=None if media is None else _continuity(config, store, bus, spaces, roles, clock),
        reminders=reminders,
        notifications=Notifications(store, clock),
        audience=audience,
        overview=Overview(
            store,
            audience,
            moderators,
            delay,
            None if cluster is None else cluster.nodes,
        ),
        missed=None
        if config.missed_after_s == 0
        else MissedSpaces(
            store, bus, spaces, reminders, clock, config.missed_after_s, _node_id(config)
        ),
    )


def _reminders(config: Config, store: Store, clock: Clock) -> Reminders:
    mailer = None
    if config.smtp_url:
        smtp = SmtpSettings.parse(config.smtp_url, config.smtp_from, config.smtp_starttls)
        mailer = Mailer(smtp)
    webhook = Webhook(config.webhook_url, config.webhook_secret) if config.webhook_url else None
    backoff = Backoff(first_s=config.notify_retry_s)
    return Reminders(
        store,
        clock,
        config.effective_public_url,
        backoff,
        mailer=mailer,
        webhook=webhook,
    )


def _continuity(
    config: Config, store: Store, bus: Bus, spaces: Spaces, roles: Roles, clock: Clock
) -> Continuity:
    policy = ContinuityPolicy(config.host_absence_s, config.host_grace_s, config.empty_stage_s)
    return Continuity(store, bus, spaces, roles, clock, policy, _node_id(config))


def _caption_model(config: Config) -> Path | None:
    """The speech model's directory; None when captions are off. A model that is not on
    disk stops the program now, not at the first space's end."""
    if not config.caption_model:
        return None
    try:
        return resolve_model(config.caption_model)
    except ModelNotFound as exc:
        raise ConfigError(f"config key 'caption_model': {exc}") from None


def _origins(
    config: Config,
    registry: SpaceRegistry,
    cluster: RemoteMedia | None,
    membership: Membership | None,
) -> Origins:
    local = create_origin(registry)
    if cluster is None:
        return Origins(local, local, None)
    local_id = membership.node_id if membership else None
    proxy = ClusterOrigin(cluster.owner, local, node_key_of(config), local_id)
    return Origins(local, proxy, proxy)


def storage_settings(config: Config) -> StorageSettings | None:
    """The object store recordings are also kept in, if storage_url names one."""
    if not config.storage_url:
        return None
    return StorageSettings(
        url=config.storage_url,
        endpoint=config.storage_endpoint,
        region=config.storage_region,
        access_key=config.storage_access_key,
        secret_key=config.storage_secret_key,
    )


def _registry(config: Config) -> SpaceRegistry:
    """What the origin serves: this disk's recordings, and the store's."""
    return SpaceRegistry(config.recordings_dir, open_object_store(storage_settings(config)))


def _local_plane(config: Config, registry: SpaceRegistry, caption_model: Path | None) -> MediaPlane:
    settings = NodeSettings(
        caption_model=caption_model,
        recordings_root=config.recordings_dir,
        part_seconds=config.part_seconds,
        segment_seconds=config.segment_seconds,
        caption_segment_seconds=config.caption_segment_seconds,
        bitrate=config.audio_bitrate,
        storage=storage_settings(config),
    )
    # A child process by default: the mixer must not share a GIL with HTTP serving.
    if config.media_process:
        return MediaProcess(settings, registry)
    return MediaNode(settings, registry)


def _capacity(
    config: Config, plane: MediaPlane | None, cluster: RemoteMedia | None
) -> Capacity | None:
    """How many spaces may be live: what the cluster's nodes announce, or this server's
    own media node's share; no limit where there is no media at all."""
    if cluster is not None:
        return cluster.capacity
    if plane is None:
        return None
    capacity = config.node_capacity

    async def embedded() -> Room:
        return (await plane.load()).room(capacity)

    return embedded


def _membership(config: Config, plane: MediaPlane, bus: Bus, clock: Clock) -> Membership:
    me = NodeInfo(_node_id(config), config.effective_node_url, config.node_capacity, 0)
    return Membership(plane, bus, clock, me, config.lease_seconds)


def node_key_of(config: Config) -> str:
    """What control-plane workers show media nodes (both derive it from the secret)."""
    return compact_key(load_secret(config), NODE).hex()


def _exists(spaces: Spaces) -> Callable[[str], Awaitable[bool]]:
    async def exists(space_id: str) -> bool:
        try:
            await spaces.get_cached(space_id)
        except NotFound:
            return False
        return True

    return exists


def _node_id(config: Config) -> str:
    return config.node_id or f"{socket.gethostname()}-{secrets.token_hex(3)}"


def api_endpoints(s: Services) -> list[Endpoint]:
    public_url = s.config.effective_public_url
    return [
        *AccountRoutes(
            s.accounts, s.auth, secure_cookies=public_url.startswith("https")
        ).endpoints(),
        *AvatarRoutes(s.avatars, s.auth).endpoints(),
        *ReplayRoutes(s.replays, s.auth).endpoints(),
        *SpaceRoutes(
            s.spaces, s.listeners, s.auth, public_url, s.config.state_cache_seconds
        ).endpoints(),
        *RoleRoutes(s.roles, s.auth).endpoints(),
        *GuestRoutes(s.guests, s.auth).endpoints(),
        *AuditRoutes(s.audit, s.auth).endpoints(),
        *NoticeRoutes(s.notices, s.auth).endpoints(),
        *ReportRoutes(s.reports, s.auth).endpoints(),
        *AppealRoutes(s.appeals, s.auth).endpoints(),
        *ModerationRoutes(s.reports, s.appeals, s.suspensions, s.audit, s.auth).endpoints(),
        *OverviewRoutes(s.overview, s.auth).endpoints(),
        *NotificationRoutes(s.notifications, s.auth).endpoints(),
        *ListenerRoutes(s.listeners, s.auth).endpoints(),
        *AudienceRoutes(s.audience).endpoints(),
        *RtcRoutes(s.rtc, s.auth).endpoints(),
        *ClipRoutes(s.clips, s.auth, public_url, s.transcripts).endpoints(),
        *TranscriptRoutes(s.transcripts, s.spaces, s.auth).endpoints(),
    ]


def _shed_share(config: Config) -> ShedShare | None:
    target_s = config.overload_target_ms / 1000
    return ShedShare(target_s) if target_s > 0 else None


def build_app(
    services: Services,
    extra_routes: list[BaseRoute] | None = None,
    holds: ConnectionHolds | None = None,
) -> Starlette:
    """The worker's ASGI app; `holds`: its server's connections, held unread while a client
    ignores a Retry-After (majlis/serving/holds.py)."""
    endpoints = api_endpoints(services)
    document = openapi(endpoints, "Majlis", __version__)

    async def openapi_json(request: Request) -> Response:
        return json_response(document)

    async def health(request: Request) -> Response:
        return json_response({"ok": True, "version": __version__})

    config = services.config
    metrics = Metrics()
    origins = services.origins
    node_api: list[BaseRoute] = []
    if services.membership is not None:
        node_api = node_routes(services.membership, origins.local, node_key_of(config))
    clip_routes = ClipRoutes(
        services.clips, services.auth, config.effective_public_url, services.transcripts
    )
    limits = RateLimits(
        config.write_rate_ip,
        config.write_burst_ip,
        config.write_rate_user,
        config.write_burst_user,
        config.auth_rate_ip,
        config.auth_burst_ip,
    )
    event_socket = EventSocket(
        services.roles,
        services.events,
        services.auth,
        config.max_ws_per_user,
        config.max_ws_per_ip,
    )
    app_routes: list[BaseRoute] = [
        *routes(endpoints),
        event_socket.route(),
        Route("/openapi.json", openapi_json),
        Route("/healthz", health),
        metrics_route(
            metrics,
            [*_metric_sources(services), _socket_metrics(event_socket), _hold_metrics(holds)],
        ),
        *web_routes(_node_modules(config), _origin_of(config.edge_url), _exists(services.spaces)),
        Mount(
            "/hls",
            app=PlaybackGuard(origins.public, services.spaces, services.tokens, services.bus),
        ),
        *clip_routes.pages(),
        *node_api,
        *(extra_routes or []),
    ]
    table = IndexedRoutes(app_routes)
    lag = services.lag
    middleware = [
        # Before anything that keys on the client's address.
        Middleware(
            ClientAddress,  # type: ignore[arg-type]
            proxies=TrustedProxies.parse(config.trusted_proxies),
        ),
        # Before every refusal, so that refusals are counted.
        Middleware(HttpMetrics, metrics=metrics, routes=table),  # type: ignore[arg-type]
        # First: a worker that is behind refuses writes before doing any of their work.
        # Joins are spared longer: their answer to overload is a ticket (a kept place in
        # line) from the waiting room, whose rate follows the same delay.
        Middleware(
            ShedWrites,  # type: ignore[arg-type]
            shedding=services.shedding,
            told=None if holds is None else holds.told,
        ),
        # The node API is the cluster's own traffic: every listener's HLS arrives there
        # from a few workers' addresses.
        Middleware(
            RequestsPerAddress,  # type: ignore[arg-type]
            limit=config.max_requests_per_ip,
            exempt=lambda path: path.startswith("/node/"),
        ),
        Middleware(BodyLimit, max_bytes=config.max_body_bytes),  # type: ignore[arg-type]
        Middleware(
            RateLimit,  # type: ignore[arg-type]
            bus=services.bus,
            auth=services.auth,
            clock=services.clock,
            limits=limits,
            is_auth_path=lambda path: path in ("/api/v1/auth/register", "/api/v1/auth/login"),
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.store.open()
        await services.bus.open()
        # Before the first request: a restart must not forget a logout or a ban.
        await services.security.ensure()
        watching = asyncio.create_task(services.security.watch())
        lagging = asyncio.create_task(lag.watch())
        # Every worker runs one: the store hands each job to one of them.
        transcribing = (
            asyncio.create_task(services.transcripts.run())
            if services.transcripts.enabled
            else None
        )
        continuity = services.continuity
        attending = None if continuity is None else asyncio.create_task(continuity.run())
        missed = services.missed
        sweeping = None if missed is None else asyncio.create_task(missed.run())
        sampling = (
            asyncio.create_task(services.audience.run())
            if services.config.audience_sample_s > 0
            else None
        )
        try:
            async with _media_running(services):
                yield
        finally:
            watching.cancel()
            lagging.cancel()
            if transcribing is not None:
                transcribing.cancel()
            if attending is not None:
                attending.cancel()
            if sweeping is not None:
                sweeping.cancel()
            if sampling is not None:
                sampling.cancel()
            await services.reminders.close()
            if services.replay_transcriber is not None:
                await services.replay_transcriber.aclose()
            await services.clip_audio.aclose()
            if origins.proxy is not None:
                await origins.proxy.aclose()
            await services.bus.close()
            await services.store.close()

    return Starlette(
        routes=[table],
        middleware=middleware,
        exception_handlers={
            MajlisError: _majlis_error,  # type: ignore[dict-item]
            HTTPException: _http_error,  # type: ignore[dict-item]
            Exception: _server_error,
        },
        lifespan=lifespan,
    )


def build_node_app(config: Config, clock: Clock | None = None) -> Starlette:
    """`majlis media`: a media node alone, for a cluster. No public API and no SQL: it
    takes spaces through the bus and offers and HLS requests from control-plane workers."""
    if not config.scaled:
        raise ConfigError(
            "config key 'bus_url': a media node joins a cluster through a shared bus; "
            "set bus_url = redis://... (the same as the control plane's)"
        )
    clock = clock or SystemClock()
    bus = open_bus(config.bus_url)
    registry = _registry(config)
    plane = _local_plane(config, registry, _caption_model(config))
    membership = _membership(config, plane, bus, clock)

    async def health(request: Request) -> Response:
        return json_response({"ok": True, "version": __version__, "node": membership.node_id})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await bus.open()
        try:
            plane.on_levels = publish_levels(bus, asyncio.get_running_loop())
            plane.on_captions = publish_captions(bus, asyncio.get_running_loop())
            await plane.start(membership.resume)
            await membership.start()
            log.info(
                "media node %s joined the cluster at %s",
                membership.node_id,
                config.effective_node_url,
            )
            try:
                yield
            finally:
                await membership.stop()
                await plane.stop()
        finally:
            await bus.close()

    metrics = Metrics()
    table = IndexedRoutes(
        [
            *node_routes(membership, create_origin(registry), node_key_of(config)),
            Route("/healthz", health),
            metrics_route(metrics, [plane.metrics]),
        ]
    )
    return Starlette(
        routes=[table],
        # The node's HTTP is the cluster's own: counted like a worker's.
        middleware=[Middleware(HttpMetrics, metrics=metrics, routes=table)],  # type: ignore[arg-type]
        exception_handlers={
            HTTPException: _http_error,  # type: ignore[dict-item]
            Exception: _server_error,
        },
        lifespan=lifespan,
    )


@contextlib.asynccontextmanager
async def _media_running(services: Services) -> AsyncIterator[None]:
    if services.cluster is not None:
        async with _cluster_running(services, services.cluster):
            yield
        return
    media = services.media
    if media is None:
        yield
        return
    async with _embedded_running(services, media):
        yield


@contextlib.asynccontextmanager
async def _cluster_running(services: Services, cluster: RemoteMedia) -> AsyncIterator[None]:
    """Scaled mode: this process's node (if any) joins the cluster, and the reconciler
    keeps every live space on some node."""
    plane, membership = services.plane, services.membership
    if plane is not None and membership is not None:
        plane.on_levels = publish_levels(services.bus, asyncio.get_running_loop())
        plane.on_captions = publish_captions(services.bus, asyncio.get_running_loop())
        await plane.start(membership.resume)
        await membership.start()
    worker_id = membership.node_id if membership else _node_id(services.config)
    lease = services.config.lease_seconds
    reconciler = Reconciler(
        services.spaces.live_starts,
        services.spaces.place,  # a start, with its captions settings
        services.bus,
        services.clock,
        worker_id,
        lease / 6,  # a killed node is found dead within two rounds: a third of a lease
        warm_up=lease,
    )
    reconciling = asyncio.create_task(reconciler.run())
    try:
        yield
    finally:
        reconciling.cancel()
        if plane is not None and membership is not None:
            await membership.stop()
            await plane.stop()
        await cluster.stop()


@contextlib.asynccontextmanager
async def _embedded_running(services: Services, media: MediaPlane) -> AsyncIterator[None]:
    """Run the embedded media node: follow bus commands, resume spaces that are live."""
    media.on_levels = publish_levels(services.bus, asyncio.get_running_loop())
    media.on_captions = publish_captions(services.bus, asyncio.get_running_loop())

    async def resume() -> None:
        for start in await services.spaces.live_starts():
            await media.handle(start)  # with its captions settings

    # Subscribed before resuming, so a start published meanwhile is not missed.
    commands = await services.bus.subscribe(MEDIA_CHANNEL)
    follower = asyncio.create_task(follow_commands(commands, media.handle))
    try:
        # A media process resumes again after every restart of its worker.
        await media.start(resume)
        yield
    finally:
        follower.cancel()
        await commands.close()
        await media.stop()


def _metric_sources(services: Services) -> list[Callable[[], Awaitable[list[Sample]]]]:
    media = [m.metrics for m in (services.plane, services.cluster) if m is not None]
    return [_overload_metrics(services), _listener_metrics(services.audience), *media]


def _listener_metrics(audience: Audience) -> Callable[[], Awaitable[list[Sample]]]:
    async def samples() -> list[Sample]:
        counts = await audience.listeners_now()
        return [
            sample
            for sid, (listeners, waiting) in counts.items()
            for sample in (
                ("majlis_listeners", {"space": sid}, float(listeners)),
                ("majlis_waiting_room_depth", {"space": sid}, float(waiting)),
            )
        ]

    return samples


def _hold_metrics(holds: ConnectionHolds | None) -> Callable[[], Awaitable[list[Sample]]]:
    async def samples() -> list[Sample]:
        if holds is None:
            return []
        samples: list[Sample] = [
            ("majlis_connection_holds_total", {}, float(holds.held)),
            ("majlis_http_in_flight", {}, float(holds.in_flight)),
            ("majlis_connections_closed_quiet_total", {}, float(holds.closed_quiet)),
        ]
        door = holds.door
        if door is not None:
            samples += [
                ("majlis_door_inside", {}, float(door.inside)),
                ("majlis_door_waiting", {}, float(door.waiting)),
                ("majlis_door_waited_total", {}, float(door.waited)),
                ("majlis_door_wait_seconds", {}, door.standing()),
            ]
        return samples

    return samples


def _socket_metrics(sockets: EventSocket) -> Callable[[], Awaitable[list[Sample]]]:
    async def samples() -> list[Sample]:
        return [("majlis_event_sockets", {}, float(sockets.open_count()))]

    return samples


def _overload_metrics(services: Services) -> Callable[[], Awaitable[list[Sample]]]:
    """What the overload controls see and decide, so an operator can watch them act."""

    async def samples() -> list[Sample]:
        admission = services.admission
        shedding = services.shedding
        share = shedding.share
        return [
            ("majlis_loop_lag_seconds", {}, services.lag.standing()),
            ("majlis_shed_share", {}, share.share if share else 0.0),
            ("majlis_shed_total", {"stage": "read"}, float(shedding.shed_early)),
            ("majlis_shed_total", {"stage": "app"}, float(shedding.shed - shedding.shed_early)),
            ("majlis_admission_rate", {}, admission.rate),
            ("majlis_admission_behind", {}, 1.0 if admission.behind else 0.0),
        ]

    return samples


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
