"""``kuroshio serve``: one process, one event loop, two listeners and one sending link per partner.

The federation listener (TLS 1.3, client certificates from pinned partner CAs only) takes
partners' links in; the operator API (FastAPI on uvicorn) serves people and browsers, on loopback
unless given a certificate. SIGINT/SIGTERM stop everything cleanly. Assembly only: the parts
live in :mod:`kuroshio.exchange` and :mod:`kuroshio.api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Callable, Generator, Iterator
from typing import IO, TYPE_CHECKING, Final

import msgspec
import uvicorn

from kuroshio.api import create_app
from kuroshio.api.federation import FederationEndpoint
from kuroshio.errors import ConfigError
from kuroshio.exchange.inbox import Inbox
from kuroshio.exchange.link import Link
from kuroshio.exchange.transports import Listener, Transport
from kuroshio.exchange.transports.wss import WssTransport
from kuroshio.node import Node
from kuroshio.partners import Partner

if TYPE_CHECKING:
    from kuroshio.exchange.transports.nats import NatsTransport

LOCK_FILE: Final = "serve.lock"
logger = logging.getLogger("kuroshio.serve")


class ServeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where a running node listens (ports as bound, so port 0 in the config works)."""

    party: str
    node: str
    federation_url: str
    api_url: str
    pid: int


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The serve process owns SIGINT/SIGTERM and stops both listeners itself.
        yield


@contextlib.contextmanager
def _exclusive(node: Node) -> Iterator[IO[str]]:
    path = node.directory / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"{node.directory} is already served by another process") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()


def check_api_binding(node: Node) -> None:
    api = node.config.api
    if not api.is_loopback() and not (api.certfile and api.keyfile):
        raise ConfigError(
            f"api.host {api.host!r} is not a loopback address: set api.certfile and api.keyfile "
            "to serve the operator API over TLS, or bind it to 127.0.0.1"
        )


def _nats_transport(node: Node) -> NatsTransport | None:
    """The NATS JetStream transport when ``[federation] nats_url`` is set (nats-py is imported
    only then: the embedded default needs no NATS)."""
    url = node.config.federation.nats_url
    if url is None:
        for party, partner in sorted(node.partners.items()):
            if _over_nats(partner):
                raise ConfigError(
                    f"partners.{party}.url {partner.url!r} is reached over NATS: "
                    "set federation.nats_url"
                )
        return None
    from kuroshio.exchange.transports.nats import NatsTransport

    return NatsTransport(
        node.identity,
        node.partners,
        url=url,
        max_frame_bytes=node.config.exchange.max_frame_bytes,
    )


def _over_nats(partner: Partner) -> bool:
    return partner.url.startswith("nats://")


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def serve(node: Node, *, on_ready: Callable[[ServeInfo], None] | None = None) -> None:
    """Run the node until SIGINT or SIGTERM."""
    check_api_binding(node)
    identity = node.identity
    partners = node.partners
    config = node.config
    with _exclusive(node):
        inbox = Inbox(node)
        endpoint = FederationEndpoint(node, inbox)
        nats = _nats_transport(node)
        transport = WssTransport(
            identity, partners, max_frame_bytes=config.exchange.max_frame_bytes
        )
        listener = await transport.listen(
            config.federation.host, config.federation.port, endpoint.handle, endpoint.on_refused
        )
        nats_listener: Listener | None = None
        if nats is not None:
            try:
                nats_listener = await nats.listen(
                    config.federation.host, 0, endpoint.handle, endpoint.on_refused
                )
            except BaseException:
                await listener.close()
                await nats.close()
                raise

        def transport_for(partner: Partner) -> Transport:
            return nats if nats is not None and _over_nats(partner) else transport

        links = {
            party: Link(node, partner, transport_for(partner))
            for party, partner in partners.items()
        }

        def wake_links() -> None:
            for link in links.values():
                link.wake()

        node.add_listener(wake_links)
        app = create_app(node, links={party: link.status for party, link in links.items()})
        api_server = _ApiServer(
            uvicorn.Config(
                app,
                host=config.api.host,
                port=config.api.port,
                ssl_certfile=config.api.certfile,
                ssl_keyfile=config.api.keyfile,
                log_config=None,
                access_log=False,
                lifespan="on",
                ws="none",
            )
        )
        api_task = asyncio.create_task(api_server.serve())
        link_tasks: list[asyncio.Task[None]] = []
        try:
            while not api_server.started:
                if api_task.done():
                    api_task.result()
                    raise ConfigError(f"the operator API could not listen on {config.api.url()}")
                await asyncio.sleep(0.02)
            api_port = api_server.servers[0].sockets[0].getsockname()[1]
            scheme = "https" if config.api.certfile else "http"
            info = ServeInfo(
                party=node.party,
                node=config.node.name,
                federation_url=(f"https://{_host_for_url(config.federation.host)}:{listener.port}"),
                api_url=f"{scheme}://{_host_for_url(config.api.host)}:{api_port}",
                pid=os.getpid(),
            )
            link_tasks = [asyncio.create_task(link.run()) for link in links.values()]
            if on_ready is not None:
                on_ready(info)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait([stopped, api_task], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
        finally:
            node.remove_listener(wake_links)
            for task in link_tasks:
                task.cancel()
            await asyncio.gather(*link_tasks, return_exceptions=True)
            api_server.should_exit = True
            with contextlib.suppress(Exception):
                await api_task
            await listener.close()
            if nats_listener is not None:
                await nats_listener.close()
            if nats is not None:
                await nats.close()
            await endpoint.close()
            for link in links.values():
                link.close()
