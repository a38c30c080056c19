"""An idle keep-alive connection outlives the clients' own keep-alive: a client that
reuses one it still holds is answered, never "Server disconnected"."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from .conftest import Server

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: majlis.test\r\n\r\n"
# httpx keeps an idle connection this long before it closes it itself.
CLIENT_KEEP_ALIVE_S = 5.0


def answer(sock: socket.socket) -> bytes:
    """One whole answer to REQUEST (b"" when the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_an_idle_connection_outlives_the_clients_keep_alive(shared_server: Server) -> None:
    address = urlsplit(shared_server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(REQUEST)
        assert answer(sock).startswith(b"HTTP/1.1 200")
        time.sleep(CLIENT_KEEP_ALIVE_S + 1.5)
        sock.sendall(REQUEST)
        assert answer(sock).startswith(b"HTTP/1.1 200")
