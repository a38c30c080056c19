"""The page routes without a browser: content types, caching, CSP, safe static paths, and the
rules the HTML and modules keep (no inline script or handler, imports that resolve)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from majlis.api.pages import CONTENT_SECURITY_POLICY, PAGES, WEB_DIR, web_routes

from .harness import NODE_MODULES, ROOT

HTML = sorted(WEB_DIR.glob("*.html"))
MODULES = sorted(WEB_DIR.rglob("*.js"))


class Client:
    """GET against the page routes in-process (ASGI), no server and no network."""

    def __init__(self, node_modules: Path | None) -> None:
        self.app = Starlette(routes=web_routes(node_modules))

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                return await c.get(path, headers=headers)

        return asyncio.run(fetch())


@pytest.fixture(scope="module")
def client() -> Client:
    return Client(NODE_MODULES)


@pytest.mark.parametrize(
    "path",
    [p.replace("{space_id}", "a1b2c3d4e5f6") for p in PAGES],
)
def test_pages_are_html_with_a_strict_csp(client: Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.text.startswith("<!doctype html>")


def test_a_malformed_space_id_is_a_404_page(client: Client) -> None:
    answer = client.get("/spaces/a.b/studio")
    assert answer.status_code == 404
    assert "Page not found" in answer.text


@pytest.mark.parametrize("page", ["", "/studio", "/replay"])
def test_an_unknown_space_is_the_404_page_not_an_empty_one(page: str) -> None:
    """Issue 16: the page of a space that does not exist rendered its empty skeleton under
    the error. The server knows, and answers the not-found page."""
    asked: list[str] = []

    async def exists(space_id: str) -> bool:
        asked.append(space_id)
        return space_id == "a1b2c3d4e5f6"

    client = Client(NODE_MODULES)
    client.app = Starlette(routes=web_routes(NODE_MODULES, exists=exists))
    known = client.get(f"/spaces/a1b2c3d4e5f6{page}")
    unknown = client.get(f"/spaces/ffffffffffff{page}")
    assert known.status_code == 200 and "Page not found" not in known.text
    assert unknown.status_code == 404 and "Page not found" in unknown.text
    assert asked == ["a1b2c3d4e5f6", "ffffffffffff"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/js/api.js", "text/javascript; charset=utf-8"),
        ("/static/js/pages/listen.js", "text/javascript; charset=utf-8"),
        ("/static/css/app.css", "text/css; charset=utf-8"),
        ("/static/img/favicon.svg", "image/svg+xml"),
        ("/favicon.ico", "image/svg+xml"),
    ],
)
def test_static_files_have_their_types_and_revalidate(
    client: Client, path: str, content_type: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == content_type
    assert "max-age" in answer.headers["cache-control"]
    again = client.get(path, headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pages.py",
        "/static/js/../../api/pages.py",
        "/static/.hidden",
        "/static/js/",
        "/static/js",
        "/static/nothing.js",
        "/static/index.html.bak",
        "/static/%2e%2e/api/pages.py",
    ],
)
def test_static_paths_stay_inside_the_web_folder(client: Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert "[tool" not in answer.text and "def web_routes" not in answer.text


def test_hls_js_comes_from_node_modules(client: Client) -> None:
    if not (NODE_MODULES / "hls.js").is_dir():
        pytest.skip("hls.js not installed (npm ci)")
    answer = client.get("/vendor/hls.mjs")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "export" in answer.text[-2000:]
    again = client.get("/vendor/hls.mjs", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304


def test_without_node_modules_hls_js_is_a_clear_404() -> None:
    client = Client(None)
    answer = client.get("/vendor/hls.mjs")
    assert answer.status_code == 404
    assert "npm ci" in answer.json()["reason"]


def test_hls_js_is_pinned_by_the_lock_file_and_not_copied() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert "hls.js" in package["dependencies"]
    assert lock["packages"]["node_modules/hls.js"]["version"] == package["dependencies"]["hls.js"]
    assert not list(WEB_DIR.rglob("hls*.js")), "hls.js must come from npm, not be copied"


@pytest.mark.parametrize("page", HTML, ids=lambda p: p.name)
def test_html_has_no_inline_script_style_or_handlers(page: Path) -> None:
    text = page.read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, "inline <script>"
    assert re.search(r"\son[a-z]+\s*=", text) is None, "inline event handler"
    assert re.search(r"\sstyle\s*=", text) is None, "inline style attribute"
    assert "<style" not in text
    for src in re.findall(r'<script[^>]*src="([^"]+)"', text):
        # lang.js, a classic script, picks the language before the first paint.
        assert src.startswith("/static/js/pages/") or src == "/static/js/lang.js", src
        assert (WEB_DIR / src.removeprefix("/static/")).is_file(), src
    assert 'lang="en"' in text
    assert 'name="viewport"' in text


@pytest.mark.parametrize("page", ["listen.html", "studio.html", "replay.html"])
def test_user_text_gets_its_own_direction(page: str) -> None:
    text = (WEB_DIR / page).read_text()
    for element in ("space-title", "space-host", "space-description"):
        assert re.search(rf'id="{element}"[^>]*dir="auto"', text), element


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(WEB_DIR)))
def test_module_imports_resolve_and_avoid_html_injection(module: Path) -> None:
    text = module.read_text()
    for target in re.findall(r"""(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]""", text):
        assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
    assert "innerHTML" not in text
    assert "insertAdjacentHTML" not in text
    assert "eval(" not in text


@pytest.mark.parametrize("page", HTML, ids=lambda p: p.name)
def test_ids_are_unique(page: Path) -> None:
    ids = re.findall(r'\sid="([^"]+)"', page.read_text())
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_modules_parse(browser_tools: str) -> None:
    """Every module is valid JavaScript (node --check; package.json says "type": "module")."""
    for module in MODULES:
        result = subprocess.run(
            [browser_tools, "--check", str(module)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{module}: {result.stderr}"
