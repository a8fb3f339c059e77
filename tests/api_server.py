"""A node's operator API served for real (uvicorn on a free loopback port) for API tests, with a
client that authenticates as the node's admin (the token ``kuroshio init`` made) unless told
otherwise."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from kuroshio.api import create_app
from kuroshio.node import ADMIN_TOKEN, Node


def admin_token(node: Node) -> str:
    """The bearer token ``kuroshio init`` left for the node's admin."""
    return (node.directory / ADMIN_TOKEN).read_text().strip()


@contextlib.contextmanager
def serving(node: Node, *, token: str | None = "admin") -> Iterator[httpx.Client]:
    """The node's operator API on a free loopback port, with a client for it that sends
    ``token`` (by default the admin's; None: no credentials)."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(node), host="127.0.0.1", port=0, log_config=None, lifespan="on", ws="none"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        bearer = admin_token(node) if token == "admin" else token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(30)
