"""The operator API of a node (FastAPI): REST with an OpenAPI spec and a live stream.

:func:`create_app` assembles the routers; :mod:`kuroshio.federation.serve` runs the app on the
operator port beside the federation listener. It does not serve partners: they use the
federation port. A :class:`~kuroshio.errors.KuroshioError` from any route is answered with its
HTTP status and one line saying what and where. The routes read through a store reader of their
own and write only through the node; no SQL runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.gzip import GZipMiddleware

from kuroshio import __version__
from kuroshio.api import cop, fused, ledger, observations
from kuroshio.api import links as link_routes
from kuroshio.api.observations import ChangeSignal
from kuroshio.errors import KuroshioError
from kuroshio.exchange.status import LinkStatus
from kuroshio.node import Node


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
        app.state.reader = node.store.reader()
        node.add_listener(on_stored)
        try:
            yield
        finally:
            node.remove_listener(on_stored)
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
    app.add_exception_handler(KuroshioError, _refused)  # type: ignore[arg-type]
    # The page, its assets (4.9 MB: script, map worker, basemap) and large answers go out
    # compressed to a browser that accepts gzip; the live stream (text/event-stream) never is.
    app.add_middleware(GZipMiddleware, minimum_size=1_024, compresslevel=6)
    for router in (
        observations.router,
        link_routes.router,
        ledger.router,
        cop.router,
        cop.page_router,
        fused.router,
    ):
        app.include_router(router)
    cop.mount_assets(app)
    cop.document_schemas(app)
    return app


async def _refused(request: Request, error: KuroshioError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=error.http_status)


__all__ = ["create_app"]
