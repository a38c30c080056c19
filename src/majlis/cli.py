"""The `majlis` command: serve, and what an operator scripts (users, spaces, URLs)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from majlis.config import Config, ConfigError, describe, load_config

if TYPE_CHECKING:  # imported where used: `majlis serve` starts without the client stack
    import httpx

__all__ = ["main"]


def _config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config file (or MAJLIS_CONFIG)")
    parser.add_argument("--data-dir", dest="data_dir", help="data directory (default ./data)")


def _load(args: argparse.Namespace, **flags: object) -> Config:
    file = args.config or (
        Path(os.environ["MAJLIS_CONFIG"]) if "MAJLIS_CONFIG" in os.environ else None
    )
    return load_config(file, flags={"data_dir": args.data_dir, **flags})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="majlis",
        description="Live audio spaces: talk over WebRTC, listen over LL-HLS, replay.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run Majlis (embedded: SQLite, local files, one process)")
    _server_flags(serve)

    media = sub.add_parser(
        "media",
        help="run a media node alone, for a cluster (a shared bus, bus_url = redis://...)",
    )
    _server_flags(media)

    _edge_command(sub)

    config = sub.add_parser("config", help="list every configuration key with its default")
    config.set_defaults(command="config")

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="action", required=True)
    create = user_sub.add_parser("create", help="create an account")
    _config_flags(create)
    create.add_argument("username")
    create.add_argument("--display-name")
    create.add_argument("--email", help="where reminders are mailed (optional)")
    create.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")

    space = sub.add_parser(
        "space", help="create, start, end spaces and print their URLs (talks to a running server)"
    )
    space_sub = space.add_subparsers(dest="action", required=True)
    for name, text in (
        ("create", "create a space (live now, or --at a time)"),
        ("start", "go live"),
        ("end", "end the space"),
        ("urls", "print a space's page, playlist and replay URLs"),
    ):
        cmd = space_sub.add_parser(name, help=text)
        cmd.add_argument(
            "--server", default=os.environ.get("MAJLIS_SERVER", "http://127.0.0.1:8080")
        )
        if name != "urls":
            cmd.add_argument("--user", required=True, help="the host's username")
            cmd.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")
        if name == "create":
            cmd.add_argument("--title", required=True)
            cmd.add_argument("--description", default="")
            cmd.add_argument("--at", help="ISO 8601 start time; omit to go live now")
            cmd.add_argument("--unlisted", action="store_true")
        else:
            cmd.add_argument("space_id")
    _host_commands(space_sub)
    _moderate_commands(sub)
    _client_commands(sub)
    return parser


_CATEGORIES = ["harassment", "hate", "spam", "off_topic", "other"]
# New objects between collections of the garbage collector's young generation, in a
# serving process (Python's default: 700).
YOUNG_GC = 20_000


def _moderate_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from majlis.client.moderate import DESK_COMMANDS

    moderate = sub.add_parser("moderate", help="site moderation: reports, appeals, suspensions")
    desk = moderate.add_subparsers(dest="action", required=True)
    for name, text in (
        ("grant", "make a user a site moderator (on this server's database)"),
        ("revoke", "take the site moderator role away"),
    ):
        cmd = desk.add_parser(name, help=text)
        _config_flags(cmd)
        cmd.add_argument("username")
    for name, text in DESK_COMMANDS.items():
        cmd = desk.add_parser(name, help=text)
        cmd.add_argument(
            "--server", default=os.environ.get("MAJLIS_SERVER", "http://127.0.0.1:8080")
        )
        cmd.add_argument("--user", required=True, help="your (a moderator's) username")
        cmd.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")
        if name in ("decide", "review", "suspend", "lift"):
            cmd.add_argument(
                "target", help={"decide": "report id", "review": "appeal id"}.get(name, "username")
            )
            cmd.add_argument("--reason", help="kept in the audit log; told to the person")
        if name == "decide":
            cmd.add_argument("outcome", choices=["dismiss", "warn", "remove", "end", "suspend"])
        if name == "review":
            cmd.add_argument("outcome", choices=["upheld", "reversed"])
        if name in ("decide", "suspend"):
            cmd.add_argument("--category", default="other", choices=_CATEGORIES)
            cmd.add_argument("--days", type=float, help="how long a suspension lasts")


# What a host (or a bot of theirs) does to people in a space, by username.
HOST_ACTIONS = {
    "approve": "let someone who asked to speak onto the stage",
    "invite": "invite a listener to speak",
    "mute": "mute someone on stage",
    "remove": "remove someone from the space (--ban: for good)",
}


def _host_commands(space_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text in HOST_ACTIONS.items():
        cmd = space_sub.add_parser(name, help=text)
        cmd.add_argument(
            "--server", default=os.environ.get("MAJLIS_SERVER", "http://127.0.0.1:8080")
        )
        cmd.add_argument("--user", required=True, help="the host's or a co-host's username")
        cmd.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")
        cmd.add_argument("space_id")
        cmd.add_argument("username", help="whom it is done to")
        if name in ("mute", "remove"):
            cmd.add_argument("--reason", help="kept in the audit log; told to them alone")
        if name == "remove":
            cmd.add_argument("--ban", action="store_true", help="and never let them back in")
            cmd.add_argument(
                "--category",
                default="other",
                choices=["harassment", "hate", "spam", "off_topic", "other"],
            )
    edit = space_sub.add_parser("edit", help="change a space's title or description")
    edit.add_argument("--server", default=os.environ.get("MAJLIS_SERVER", "http://127.0.0.1:8080"))
    edit.add_argument("--user", required=True, help="the host's username")
    edit.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")
    edit.add_argument("space_id")
    edit.add_argument("--title")
    edit.add_argument("--description")


def _edge_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = sub.add_parser(
        "edge",
        help="run an edge (nginx, Varnish) in front of origins: listeners' audio at any scale",
    )
    _config_flags(edge)
    edge.add_argument(
        "--origin",
        action="append",
        required=True,
        help="http://host:port of an origin (majlis serve, or another edge as a shield); "
        "repeat for standbys, the first healthy one answers",
    )
    edge.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    edge.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    edge.add_argument("--cache-mb", type=int, default=256, help="cache size (default 256 MB)")
    edge.add_argument(
        "--threads",
        type=int,
        default=5000,
        help="worker threads per pool, two pools (default 5000); a listener whose segment "
        "is streaming holds one",
    )
    edge.add_argument(
        "--stream-window",
        type=int,
        default=30,
        help="a listener stream ends at most this many seconds after its token expires "
        "(default 30)",
    )
    edge.add_argument(
        "--stream-horizon",
        type=int,
        default=120,
        help="and is checked again at least this often (default 120 s)",
    )
    edge.add_argument(
        "--stream-parts",
        type=int,
        default=1,
        choices=(1, 2, 4),
        help="parts sent to stream listeners together: 2 halves the edge's writes and adds "
        "up to a part of delay (default 1)",
    )
    edge.add_argument(
        "--workdir", type=Path, help="edge's working files (default: a fresh temporary directory)"
    )
    edge.add_argument(
        "--print-config",
        action="store_true",
        help="print the generated configuration (Varnish VCL, nginx) and exit",
    )


def _client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = os.environ.get("MAJLIS_SERVER", "http://127.0.0.1:8080")
    speak = sub.add_parser(
        "speak",
        help="speak in a space over WebRTC: a generated tone or an audio file",
        description="Log in, (optionally ask to speak and wait for approval), then send a "
        "tone or a file over the same WebRTC path as the browser. If the connection dies "
        "(the media node restarted, the network dropped) it reconnects by itself, until the "
        "space ends or the speaker leaves the stage. Bots and tests use it.",
    )
    speak.add_argument("space_id")
    speak.add_argument("--server", default=server, help="default MAJLIS_SERVER or :8080")
    speak.add_argument("--user", required=True)
    speak.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")
    source = speak.add_mutually_exclusive_group()
    source.add_argument("--tone", type=float, default=440.0, help="sine frequency in Hz")
    source.add_argument("--file", type=Path, help="audio file to send (any format FFmpeg reads)")
    speak.add_argument("--level", type=float, default=-20.0, help="tone level in dBFS")
    speak.add_argument("--burst", help="ON,OFF seconds: gate the tone (latency tests)")
    speak.add_argument("--duration", type=float, help="seconds to speak (default: until Ctrl-C)")
    speak.add_argument("--record-mix", type=Path, help="save what you hear (your mix-minus)")
    speak.add_argument("--ask", action="store_true", help="ask to speak and wait for approval")

    listen = sub.add_parser(
        "listen",
        help="listen to a live space or a replay; play it or record it to WAV",
        description="Join as a listener (anonymous unless --user), wait in the waiting "
        "room if asked to, then play the stream with ffplay or record it with --out.",
    )
    listen.add_argument("space_id")
    listen.add_argument("--server", default=server, help="default MAJLIS_SERVER or :8080")
    listen.add_argument("--out", type=Path, help="record to this WAV file instead of playing")
    listen.add_argument("--duration", type=float, help="seconds to listen (default: to the end)")
    listen.add_argument("--user", help="listen as this user (default anonymous)")
    listen.add_argument("--password", help="default: MAJLIS_PASSWORD or a prompt")
    listen.add_argument(
        "--captions",
        action="store_true",
        help="print the live captions (speaker: text) as they come, beside the audio "
        "(alone where nothing plays audio); a space without captions is refused with why",
    )


def _speak(args: argparse.Namespace) -> int:
    from majlis.client.api import ApiError
    from majlis.client.speak import SpeakOptions, speak

    burst = None
    if args.burst:
        on, _, off = args.burst.partition(",")
        try:
            burst = (float(on), float(off))
        except ValueError:
            raise CliError("--burst wants ON,OFF in seconds, e.g. 0.2,0.8") from None
    options = SpeakOptions(
        server=args.server,
        space_id=args.space_id,
        username=args.user,
        password=_password(args),
        tone=args.tone,
        level_db=args.level,
        burst=burst,
        file=args.file,
        duration=args.duration,
        record_mix=args.record_mix,
        ask=args.ask,
    )
    try:
        return asyncio.run(speak(options))
    except ApiError as exc:
        raise CliError(f"the server refused: {exc.reason} ({exc.status})") from None


def _listen(args: argparse.Namespace) -> int:
    from majlis.client.listen import CaptionsUnavailable, ListenOptions, NoAudioYet, listen

    options = ListenOptions(
        server=args.server,
        space_id=args.space_id,
        out=args.out,
        duration=args.duration,
        username=args.user,
        password=_password(args) if args.user else None,
        captions=args.captions,
    )
    try:
        return asyncio.run(listen(options))
    except (CaptionsUnavailable, NoAudioYet) as refused:
        raise CliError(str(refused)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("serve", "media"):
            return _serve(args)
        if args.command == "edge":
            return _edge(args)
        if args.command == "config":
            for key, default, doc in describe():
                print(f"{key:20} {default:28} {doc}")
            return 0
        if args.command == "user":
            return asyncio.run(_user_create(args))
        if args.command == "speak":
            return _speak(args)
        if args.command == "listen":
            return _listen(args)
        if args.command == "moderate":
            return asyncio.run(_moderate(args))
        return asyncio.run(_space(args))
    except ConfigError as exc:
        print(f"majlis: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"majlis: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


class CliError(Exception):
    pass


def _server_flags(parser: argparse.ArgumentParser) -> None:
    _config_flags(parser)
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--verbose", action="store_true", help="debug logs (SQL, RTP, ICE, every library)"
    )


def _password(args: argparse.Namespace) -> str:
    given = args.password or os.environ.get("MAJLIS_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        # getpass would fall back to reading stdin, and fail with a traceback at its end.
        raise CliError("no password: give --password or MAJLIS_PASSWORD, or run in a terminal")
    try:
        return getpass.getpass("password: ")
    except EOFError:
        raise CliError("no password given") from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from starlette.types import ASGIApp

    from majlis.api.client_address import TrustedProxies
    from majlis.app import build_app, build_node_app, build_services
    from majlis.serving import KEEP_ALIVE_S, ConnectionHolds, Server

    config = _load(args, host=args.host, port=args.port)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiortc's ICE logs every candidate pair at INFO, httpx every request (a control-plane
    # worker's to its media nodes): noise unless debugging.
    for noisy in ("aioice", "aiortc", "httpx"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise CliError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror} "
            "(another Majlis running? pick a port with --port)"
        ) from None
    # Listening before the line below is printed: connections made as soon as a script
    # reads it wait in the backlog instead of being refused.
    sock.listen(2048)
    port = sock.getsockname()[1]
    if config.port == 0:
        config = load_config(
            args.config,
            flags={
                "data_dir": config.data_dir,
                "host": config.host,
                "port": port,
            },
        )
    asyncio.run(_check_backends(config, sql=args.command == "serve"))
    app: ASGIApp
    if args.command == "media":
        holds = ConnectionHolds()
        app = holds.watching(build_node_app(config))
    else:
        services = build_services(config)
        # Writes are refused as they are read, by the rule the app sheds with; a
        # proxy's connection carries other clients' requests, so it is never held.
        holds = ConnectionHolds(
            gate=services.shedding,
            is_proxy=TrustedProxies.parse(config.trusted_proxies).trusts,
            door=services.door,
        )
        app = holds.watching(build_app(services, holds=holds))
    # Everything alive now (modules, routes, services: ~95,000 objects) lives as long as
    # the process. Frozen, a full collection walks only what was made since, not all of
    # it (as in the media worker, media/runtime/collector.py). Goodput under overload was
    # the same within noise either way (docs/benchmarks.md, "A share, not all").
    gc.collect()
    gc.freeze()
    # The young generation is collected every YOUNG_GC objects, not 700: under overload
    # ~1,500 requests are in hand, and each collection walked and promoted their objects
    # (docs/benchmarks.md, "A lazier collector, shipped").
    gc.set_threshold(YOUNG_GC, *gc.get_threshold()[1:])
    what = "majlis media node" if args.command == "media" else "majlis"
    server = Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="debug" if args.verbose else "warning",
            access_log=args.verbose,
            http="httptools",
            loop="uvloop",
            ws="websockets-sansio",
            ws_max_size=65536,
            timeout_keep_alive=KEEP_ALIVE_S,
            # The app reads X-Forwarded-For itself, from the proxies `trusted_proxies` names.
            proxy_headers=False,
        ),
        holds=holds,
    )
    print(
        f"{what} listening on {config.effective_public_url} (data in {config.data_dir})", flush=True
    )
    server.run(sockets=[sock])
    return 0


async def _check_backends(config: Config, *, sql: bool) -> None:
    """Reach the bus (and the database) once before serving, so that a wrong URL or a
    server that is down is one line naming it, not a traceback from the server's start."""
    from majlis.bus import open_bus
    from majlis.bus.base import Bus
    from majlis.store import open_store
    from majlis.store.base import Store

    checks: list[tuple[str, str, Bus | Store]] = [
        ("bus_url", config.bus_url, open_bus(config.bus_url))
    ]
    if sql:
        checks.append(
            (
                "database_url",
                config.effective_database_url,
                open_store(config.effective_database_url),
            )
        )
    for key, url, backend in checks:
        try:
            await backend.open()
        except Exception as exc:  # whatever the driver raises: say it, then stop
            raise CliError(f"cannot reach {key} {_without_password(url)}: {exc}") from None
        await backend.close()
    await asyncio.to_thread(_check_storage, config)


def _check_storage(config: Config) -> None:
    """List the bucket once: a wrong bucket, endpoint or key is one line, not a node that
    starts and then waits for a store that will never answer."""
    from majlis.app import storage_settings
    from majlis.media.recording.storage import S3Store, StorageError

    settings = storage_settings(config)
    if settings is None:
        return
    try:
        S3Store(settings).check()
    except StorageError as exc:
        where = config.storage_endpoint or "AWS"
        raise CliError(f"cannot reach storage_url {config.storage_url} at {where}: {exc}") from None


def _without_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}" if ":" in credentials else url


def _edge(args: argparse.Namespace) -> int:
    from majlis.app import load_secret
    from majlis.edge import (
        EdgeError,
        EdgeRun,
        EdgeSettings,
        parse_origin,
        render_config,
        run_edge,
    )
    from majlis.signing import PLAYBACK, compact_key

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: give a port between 1 and 65535")
    if args.cache_mb < 16:
        raise CliError(f"--cache-mb {args.cache_mb}: give at least 16")
    config = _load(args)
    try:
        origins = tuple(parse_origin(url) for url in args.origin)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    settings = EdgeSettings(origins, compact_key(load_secret(config), PLAYBACK))
    if not 100 <= args.threads <= 20000:
        raise CliError(f"--threads {args.threads}: give 100 to 20000")
    if not 1 <= args.stream_window <= args.stream_horizon <= 3600:
        raise CliError("give 1 <= --stream-window <= --stream-horizon <= 3600 seconds")
    run = EdgeRun(
        args.host,
        args.port,
        args.workdir,
        cache_mb=args.cache_mb,
        threads_max=args.threads,
        stream_window_s=args.stream_window,
        stream_horizon_s=args.stream_horizon,
        stream_parts=args.stream_parts,
    )
    if args.print_config:
        print(render_config(settings, run), end="")
        return 0
    try:
        return run_edge(settings, run)
    except EdgeError as exc:
        raise CliError(str(exc)) from None


async def _user_create(args: argparse.Namespace) -> int:
    from majlis.app import build_services
    from majlis.errors import MajlisError

    services = build_services(_load(args))
    await services.store.open()
    try:
        session = await services.accounts.register(
            args.username, _password(args), args.display_name, args.email
        )
    except MajlisError as exc:
        raise CliError(exc.reason) from None
    finally:
        await services.store.close()
    if session.user is not None:
        print(f"created user {session.user.username} (id {session.user.id})")
    return 0


async def _moderate(args: argparse.Namespace) -> int:
    if args.action in ("grant", "revoke"):
        return await _grant(args)
    import httpx

    from majlis.client.api import ApiClient, ApiError
    from majlis.client.moderate import DeskCommand, run_desk

    suspends = args.action == "suspend" or getattr(args, "outcome", None) == "suspend"
    if suspends and (args.days is None or not 0 < args.days <= 366):
        raise CliError("a suspension needs --days, more than 0 and at most 366")
    command = DeskCommand(
        args.action,
        getattr(args, "target", None),
        getattr(args, "outcome", None),
        getattr(args, "category", "other"),
        getattr(args, "reason", None),
        getattr(args, "days", None),
    )
    async with ApiClient(args.server.rstrip("/"), retries=2) as client:
        try:
            await client.login(args.user, _password(args))
            lines = await run_desk(client, command)
        except ApiError as exc:
            raise CliError(f"server said {exc.status}: {exc.reason}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {args.server}: {exc}") from None
    print("\n".join(lines))
    return 0


async def _grant(args: argparse.Namespace) -> int:
    from majlis.app import build_services
    from majlis.errors import MajlisError

    services = build_services(_load(args))
    await services.store.open()
    try:
        changed = await services.moderators.grant(args.username, args.action == "grant")
    except MajlisError as exc:
        raise CliError(exc.reason) from None
    finally:
        await services.store.close()
    role = "a site moderator" if args.action == "grant" else "not a site moderator"
    print(f"{args.username} is {role}" + ("" if changed else " (already)"))
    return 0


async def _space(args: argparse.Namespace) -> int:
    import httpx

    base = args.server.rstrip("/")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        if args.action == "urls":
            return _print_urls(base, args.space_id)
        login = await client.post(
            "/api/v1/auth/login", json={"username": args.user, "password": _password(args)}
        )
        _check(login)
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        if args.action in HOST_ACTIONS:
            return await _host_action(client, headers, args)
        if args.action == "edit":
            changes = {
                key: value
                for key, value in (("title", args.title), ("description", args.description))
                if value is not None
            }
            answer = await client.patch(
                f"/api/v1/spaces/{args.space_id}", json=changes, headers=headers
            )
        elif args.action == "create":
            body: dict[str, object] = {
                "title": args.title,
                "description": args.description,
                "visibility": "unlisted" if args.unlisted else "public",
            }
            if args.at:
                body["scheduled_for"] = _parse_time(args.at)
            answer = await client.post("/api/v1/spaces", json=body, headers=headers)
        else:
            answer = await client.post(
                f"/api/v1/spaces/{args.space_id}/{args.action}", headers=headers
            )
        _check(answer)
        space = answer.json()
        print(f"{space['id']} {space['state']} {space['title']}")
        return _print_urls(base, space["id"])


async def _host_action(
    client: httpx.AsyncClient, headers: dict[str, str], args: argparse.Namespace
) -> int:
    one = f"/api/v1/spaces/{args.space_id}"
    if args.action == "invite":
        answer = await client.post(
            f"{one}/invites", json={"username": args.username}, headers=headers
        )
    else:
        user_id = await _user_in_space(client, headers, one, args.username)
        body: dict[str, object] | None = None
        if args.action == "approve":
            path = f"{one}/requests/{user_id}/approve"
        else:
            path = f"{one}/participants/{user_id}/{args.action}"
            body = {"reason": args.reason} if args.reason else {}
            if args.action == "remove":
                body |= {"ban": args.ban, "category": args.category}
        answer = await client.post(path, json=body, headers=headers)
    _check(answer)
    print(f"{args.action}: {args.username} in {args.space_id}")
    return 0


async def _user_in_space(
    client: httpx.AsyncClient, headers: dict[str, str], one: str, username: str
) -> str:
    """The id of `username` among the space's stage, requests to speak and listeners."""
    for path, key in (
        ("/participants", "participants"),
        ("/requests", "requests"),
        ("/listeners", "users"),
    ):
        answer = await client.get(one + path, headers=headers)
        _check(answer)
        for person in answer.json()[key]:
            if str(person["username"]).lower() == username.lower():
                return str(person["user_id"])
    raise CliError(f"{username} is not on stage, asking to speak or listening in {one[15:]}")


def _print_urls(base: str, space_id: str) -> int:
    print(f"page:     {base}/spaces/{space_id}")
    print(f"playlist: {base}/hls/{space_id}/index.m3u8 (once ended; live: POST …/join)")
    print(f"replay:   {base}/hls/{space_id}/replay.m4a")
    print(f"join:     {base}/api/v1/spaces/{space_id}/join (a live playlist with a token)")
    print(f"state:    {base}/api/v1/spaces/{space_id}/state")
    return 0


def _check(response: object) -> None:
    import httpx

    if not isinstance(response, httpx.Response) or response.status_code >= 400:
        reason = response.text if isinstance(response, httpx.Response) else "no answer"
        raise CliError(f"server said {getattr(response, 'status_code', '?')}: {reason}")


def _parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--at {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


if __name__ == "__main__":
    sys.exit(main())
