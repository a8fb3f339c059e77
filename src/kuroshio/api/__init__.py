"""The operator API of a node (FastAPI): REST with an OpenAPI spec and a live stream.

:func:`create_app` assembles the routers; :mod:`kuroshio.server` runs the app on the operator
port beside the federation listener. It does not serve partners: they use the federation port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI

from kuroshio import __version__
from kuroshio.api import cop
from kuroshio.api.federation import status_router
from kuroshio.api.observations import ChangeFeed, ChangeSignal, router
from kuroshio.exchange.link import LinkStatus
from kuroshio.node import Node
from kuroshio.store.sqlite import SQLiteStore


def create_app(node: Node, *, links: Mapping[str, LinkStatus] | None = None) -> FastAPI:
    """The operator API of ``node``; ``links`` is the live status of its sending links."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        changes = ChangeSignal()

        def on_stored() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(changes.notify)

        app.state.changes = changes
        app.state.reader = SQLiteStore(node.store.path)
        app.state.feed = ChangeFeed(node.store.path)
        node.add_listener(on_stored)
        try:
            yield
        finally:
            node.remove_listener(on_stored)
            app.state.feed.close()
            app.state.reader.close()

    app = FastAPI(
        title=f"kuroshio node {node.config.node.name} ({node.party})",
        version=__version__,
        lifespan=lifespan,
        # The interactive pages load their scripts from a CDN; nodes fetch nothing at run time.
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    app.state.links = dict(links or {})
    app.include_router(router)
    app.include_router(status_router)
    app.include_router(__import__("kuroshio.api.ledger", fromlist=["router"]).router)
    app.include_router(cop.router)
    app.include_router(cop.page_router)
    app.include_router(__import__("kuroshio.api.fused", fromlist=["router"]).router)
    cop.mount_assets(app)
    cop.document_schemas(app)
    return app


__all__ = ["create_app"]
