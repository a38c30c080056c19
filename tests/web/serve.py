"""Run Majlis with the web app for the browser tests: `python tests/web/serve.py DATA_DIR`.

Prints "majlis listening on http://127.0.0.1:PORT" once the socket is bound (port 0 picks a
free one), like `majlis serve`. Configuration comes from MAJLIS_* variables as usual. Until
app.py mounts the web routes itself, they are added here through build_app's extra_routes.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn
from starlette.routing import Route

from majlis.api.pages import web_routes
from majlis.app import build_app, build_services
from majlis.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def main(data_dir: str) -> None:
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = load_config(flags={"data_dir": data_dir, "host": "127.0.0.1", "port": port})
    services = build_services(config)
    app = build_app(services)
    if not any(isinstance(r, Route) and r.path == "/" for r in app.routes):
        app = build_app(services, extra_routes=web_routes(ROOT / "node_modules"))
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", ws="websockets-sansio")
    )
    print(f"majlis listening on {config.effective_public_url}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])
