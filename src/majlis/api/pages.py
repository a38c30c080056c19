"""The web app: HTML pages, their static modules and styles, and hls.js from node_modules.

Pages are static HTML shells; the ES modules they load fill them in from the JSON API, so
these handlers know nothing about spaces or accounts. Every HTML answer carries a strict
Content-Security-Policy (no inline script or style anywhere in web/). Static files are
revalidated with an ETag; the vendored hls.js comes from the npm install of the project
(package-lock.json pins it), never from a copy in the repository.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "WEB_DIR",
    "content_security_policy",
    "page_headers",
    "web_routes",
]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def content_security_policy(media_origin: str = "") -> str:
    """What the pages need and nothing more: our own scripts, styles and API; media from our
    origin or the edge (HLS, replay files) or from blob: URLs that hls.js's MediaSource
    makes; hls.js runs its transmuxer in a worker built from a blob: URL."""
    media = f" {media_origin}" if media_origin else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"media-src 'self'{media} blob:",
            f"connect-src 'self'{media} ws: wss:",
            "worker-src 'self' blob:",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


def page_headers(media_origin: str = "") -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(media_origin),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


# Modules and styles are not fingerprinted (no bundler): browsers keep them a few minutes,
# then revalidate with the ETag, so a deploy is seen within minutes without full reloads.
_STATIC_CACHE = "public, max-age=300, must-revalidate"
_VENDOR_CACHE = "public, max-age=86400"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}

_SPACE_ID = re.compile(r"^[A-Za-z0-9_:-]{1,64}$")
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")

Handler = Callable[[Request], Awaitable[Response]]
# Whether a space of this id exists (may be a little stale: a cache).
SpaceExists = Callable[[str], Awaitable[bool]]

PAGES: dict[str, str] = {
    "/": "index.html",
    "/signup": "signup.html",
    "/login": "login.html",
    "/new": "new.html",
    "/notices": "notices.html",
    "/moderation": "moderation.html",
    "/admin": "admin.html",
    "/spaces/{space_id}": "listen.html",
    "/spaces/{space_id}/studio": "studio.html",
    "/spaces/{space_id}/replay": "replay.html",
}


def web_routes(
    node_modules: Path | None, media_origin: str = "", exists: SpaceExists | None = None
) -> list[BaseRoute]:
    """Routes of the web app. `node_modules` is the npm install holding hls.js; without it
    /vendor/hls.mjs answers 404 and the player uses the browser's own HLS where it has one.
    `media_origin` is the edge's origin (scheme://host[:port]) when listeners use one.
    With `exists`, a space's pages answer the not-found page (404) for an unknown id
    instead of an empty page that finds out for itself."""
    web = WEB_DIR
    headers = page_headers(media_origin)
    routes: list[BaseRoute] = [
        Route(path, _page(web / name, headers, exists), methods=["GET", "HEAD"])
        for path, name in PAGES.items()
    ]
    routes.append(Route("/static/{path:path}", _static(web), methods=["GET", "HEAD"]))
    hls_dist = node_modules / "hls.js" / "dist" if node_modules is not None else None
    routes += [
        Route("/vendor/hls.mjs", _vendor(hls_dist, "hls.min.mjs"), methods=["GET", "HEAD"]),
        Route(
            "/vendor/hls.min.mjs.map",
            _vendor(hls_dist, "hls.min.mjs.map"),
            methods=["GET", "HEAD"],
        ),
        Route("/favicon.ico", _favicon(web), methods=["GET", "HEAD"]),
    ]
    return routes


def _page(path: Path, headers: dict[str, str], exists: SpaceExists | None) -> Handler:
    not_found = WEB_DIR / "notfound.html"

    async def page(request: Request) -> Response:
        space_id = request.path_params.get("space_id")
        if space_id is not None and not await _known(space_id, exists):
            return _file(request, not_found, headers, status=404)
        return _file(request, path, headers)

    page.__name__ = f"page_{path.stem}"
    return page


async def _known(space_id: str, exists: SpaceExists | None) -> bool:
    if not _SPACE_ID.match(space_id):
        return False
    return exists is None or await exists(space_id)


def _static(root: Path) -> Handler:
    async def static(request: Request) -> Response:
        path = _safe_join(root, request.path_params["path"])
        if path is None:
            return _not_found("no such file")
        return _file(request, path, {"Cache-Control": _STATIC_CACHE})

    return static


def _vendor(dist: Path | None, name: str) -> Handler:
    async def vendor(request: Request) -> Response:
        if dist is None:
            return _not_found("hls.js is not installed (run npm ci at the project root)")
        return _file(request, dist / name, {"Cache-Control": _VENDOR_CACHE})

    return vendor


def _favicon(root: Path) -> Handler:
    async def favicon(request: Request) -> Response:
        return _file(request, root / "img" / "favicon.svg", {"Cache-Control": _STATIC_CACHE})

    return favicon


def _safe_join(root: Path, relative: str) -> Path | None:
    """root/relative when every part is a plain name (no dot files, no '..', no '//')."""
    parts = relative.split("/")
    if not parts or any(not _STATIC_NAME.match(part) for part in parts):
        return None
    return root.joinpath(*parts)


def _file(request: Request, path: Path, headers: dict[str, str], status: int = 200) -> Response:
    content_type = _TYPES.get(path.suffix.lower())
    try:
        stat = os.stat(path)
    except OSError:
        return _not_found("no such file")
    if content_type is None or not path.is_file():
        return _not_found("no such file")
    etag = _etag(stat)
    out = {**headers, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if status == 200 and _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=out)
    return FileResponse(path, status, out, media_type=content_type, stat_result=stat)


def _etag(stat: os.stat_result) -> str:
    base = f"{stat.st_mtime_ns}-{stat.st_size}".encode()
    return f'"{hashlib.md5(base, usedforsecurity=False).hexdigest()}"'


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags or "*" in tags


def _not_found(reason: str) -> Response:
    return Response(
        orjson.dumps({"error": "not_found", "reason": reason}),
        status_code=404,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
