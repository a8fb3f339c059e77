"""The operator API of a node (FastAPI): REST with an OpenAPI spec and a live stream.

:func:`create_app` assembles the routers; :mod:`kuroshio.federation.serve` runs the app on the
operator port beside the federation listener. It does not serve partners: they use the
federation port. Every route but ``/api/health`` needs an authenticated operator whose role
allows it (:mod:`kuroshio.api.access`; ``/metrics``, for a monitoring system, needs the least).
A :class:`~kuroshio.errors.KuroshioError` from any route is answered with its HTTP status and
one line saying what and where. The routes read through a
store reader of their own and write only through the node; no SQL runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.gzip import GZipMiddleware

from kuroshio import __version__
from kuroshio.api import access, cop, feeds, fused, ledger, messages, metrics, observations
from kuroshio.api import links as link_routes
from kuroshio.api.access import Gate, SameSiteOnly, needs
from kuroshio.api.observations import ChangeSignal
from kuroshio.errors import KuroshioError, NotAuthenticated
from kuroshio.exchange.status import LinkStatus
from kuroshio.node import Node


def end_streams(app: FastAPI) -> None:
    """End the live streams of an app made by :func:`create_app` (on its event loop), so that
    a server stopping does not wait for them: they never end by themselves."""
    changes: ChangeSignal = app.state.changes
    changes.close()


def create_app(node: Node, *, links: Mapping[str, LinkStatus] | None = None) -> FastAPI:
    """The operator API of ``node``; ``links`` is the live status of its sending links."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        changes: ChangeSignal = app.state.changes

        def on_stored() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(changes.notify)

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
        openapi_url=None,  # served below, to authenticated operators only
    )
    app.state.node = node
    app.state.changes = ChangeSignal()
    app.state.links = dict(links or {})
    gate = app.state.gate = Gate(node)
    app.add_middleware(SameSiteOnly, gate=gate)
    app.add_exception_handler(KuroshioError, _refused)  # type: ignore[arg-type]
    # The page, its assets (4.9 MB: script, map worker, basemap) and large answers go out
    # compressed to a browser that accepts gzip; the live stream (text/event-stream) never is.
    app.add_middleware(GZipMiddleware, minimum_size=1_024, compresslevel=6)
    viewer, liaison = [Depends(needs("viewer"))], [Depends(needs("liaison"))]
    app.include_router(access.router)
    app.include_router(observations.router)  # each route says its role; health needs none
    app.include_router(cop.router, dependencies=viewer)
    app.include_router(fused.router, dependencies=viewer)
    app.include_router(feeds.router, dependencies=viewer)
    app.include_router(cop.page_router)
    app.include_router(link_routes.router, dependencies=liaison)
    app.include_router(ledger.router, dependencies=liaison)
    app.include_router(messages.router, dependencies=viewer)  # sending says liaison
    app.include_router(metrics.router)  # the monitor role, the least of all
    cop.document_schemas(app)

    @app.get("/openapi.json", include_in_schema=False, dependencies=viewer)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app


async def _refused(request: Request, error: KuroshioError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, NotAuthenticated) else None
    return JSONResponse({"detail": str(error)}, status_code=error.http_status, headers=headers)


__all__ = ["create_app"]
