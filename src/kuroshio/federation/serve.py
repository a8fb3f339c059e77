"""``kuroshio serve``: one process, one event loop, two listeners and one sending link per partner.

The federation listener (TLS 1.3, client certificates from pinned partner CAs only) takes
partners' links in; the operator API (FastAPI on uvicorn) serves people and browsers, on loopback
unless given a certificate; the node's configured feeds run beside the links
(:mod:`kuroshio.federation.feeds`). SIGINT/SIGTERM stop everything cleanly. Assembly only: the parts
live in :mod:`kuroshio.exchange` and :mod:`kuroshio.api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import msgspec
import uvicorn

from kuroshio.api import create_app, end_streams
from kuroshio.errors import ConfigError, KuroshioError
from kuroshio.exchange.status import KEEP_LIVE_S, encode_live, keep_live
from kuroshio.federation.endpoint import FederationEndpoint
from kuroshio.federation.feeds import NodeFeeds
from kuroshio.federation.inbox import Inbox
from kuroshio.federation.link import Link
from kuroshio.federation.transports import Transport
from kuroshio.federation.transports.wss import WssTransport
from kuroshio.node import Node, exclusive
from kuroshio.partners import Partner
from kuroshio.tak import CotService

if TYPE_CHECKING:
    from kuroshio.federation.transports.nats import NatsTransport

STOP_GRACE_S: Final = 20
"""How long a stopping node lets requests in progress finish (an export to a slow client, a
post waiting for the store) before it cancels them; live streams it ends at once. Shorter than
the supervisor's wait for its workers (:data:`kuroshio.federation.workers.STOP_TIMEOUT_S`) and
the systemd unit's ``TimeoutStopSec``."""
FORCED_EXIT: Final = 1
"""The exit status of a node stopped by a second SIGINT (Ctrl+C again), without waiting."""
ESCALATION_CHECK_S: Final = 5.0
LINK_STATUS_CHECK_S: Final = 1.0
"""How often the process running the links looks for a change of their status to write to the
store for other processes."""
"""How often the exchange process looks for messages past their acknowledgement deadline."""
logger = logging.getLogger("kuroshio.serve")


class ServeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where a running node listens (ports as bound, so port 0 in the config works)."""

    party: str
    node: str
    federation_url: str
    api_url: str
    pid: int
    cot: dict[str, str] = {}
    """Cursor-on-Target outputs by name: where each listens (as bound) or pushes to."""


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The serve process owns SIGINT/SIGTERM and stops both listeners itself.
        yield


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
    from kuroshio.federation.transports.nats import NatsTransport, bus_tls

    cafile = node.config.federation.nats_cafile
    tls = None
    if url.startswith("tls://"):
        tls = bus_tls(node.identity, None if cafile is None else node.directory / cafile)
    return NatsTransport(
        node.identity,
        node.partners,
        url=url,
        max_frame_bytes=node.config.exchange.max_frame_bytes,
        tls=tls,
        remember=node.first_hello,
    )


def _over_nats(partner: Partner) -> bool:
    return partner.url.startswith("nats://")


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


Role: TypeAlias = Literal["all", "api", "exchange", "receive", "send"]
"""What one serve process does: everything (the embedded default), only the operator API (one
of several API workers), only the exchange (federation listener and sending links), or half of
it when the node runs several receiving processes: ``receive`` takes partners' links in on a
federation socket shared with the other receiving processes, ``send`` runs the sending links
(with the feeds, the escalation of overdue messages, the Cursor-on-Target outputs and the links
over NATS)."""
RECEIVES: Final = frozenset({"all", "exchange", "receive"})
SENDS: Final = frozenset({"all", "exchange", "send"})


async def serve(
    node: Node,
    *,
    on_ready: Callable[[ServeInfo], None] | None = None,
    on_stop: Callable[[], None] | None = None,
    role: Role = "all",
    api_socket: socket.socket | None = None,
    federation_socket: socket.socket | None = None,
    receivers: int = 1,
) -> None:
    """Run the node until SIGINT or SIGTERM (or until the operator API stops).

    Everything started is registered on one exit stack, so it is closed in reverse order however
    serving ends; the API server and the links run in one task group. ``on_stop`` is called
    when the signal to stop comes. ``role`` and
    ``api_socket`` (a listening socket handed down by :mod:`kuroshio.federation.workers`) let
    several processes share the work of a node on PostgreSQL; only ``all`` takes the node
    directory's serve lock. A ``receive`` process accepts on ``federation_socket`` (handed down
    too), beside ``receivers - 1`` others.
    """
    if role in ("all", "api"):
        check_api_binding(node)
    if role == "receive" and federation_socket is None:
        raise ConfigError("a receiving process needs the federation socket of its supervisor")
    with exclusive(node) if role == "all" else contextlib.nullcontext():
        try:
            async with contextlib.AsyncExitStack() as stack:
                shared = _SharedListener(federation_socket, receivers)
                await _serve(node, stack, on_ready, on_stop, role, api_socket, shared)
        except BaseExceptionGroup as group:
            raise _single(group) from None


async def _serve(
    node: Node,
    stack: contextlib.AsyncExitStack,
    on_ready: Callable[[ServeInfo], None] | None,
    on_stop: Callable[[], None] | None,
    role: Role,
    api_socket: socket.socket | None,
    shared: _SharedListener,
) -> None:
    config = node.config
    told = False  # whether the node's other processes' announcements reach this one
    if role != "receive":  # a receiving process has nothing to wake: no links, no API
        stop_watching = node.watch_other_processes()
        if stop_watching is not None:
            stack.callback(stop_watching)
            told = True
    links: dict[str, Link] = {}
    federation_url = ""
    feeds: NodeFeeds | None = None
    if role != "api":
        federation_url, links = await _exchange(node, stack, role, shared, told=told)
    if role in SENDS:
        # the feeds run where the links do: one process per node, never in each API worker
        feeds = NodeFeeds(node) if config.feeds else None
    api_server = app = None
    if role in ("all", "api"):
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
                timeout_graceful_shutdown=STOP_GRACE_S,
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(signum: signal.Signals) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            # Ctrl+C again: stop now, as kill -9 would. Nothing committed is lost that way (the
            # fault suite kills nodes mid-stream), and an unfinished transaction is rolled back.
            # Only SIGINT: a worker may get SIGTERM twice (from systemd, which signals every
            # process of the unit, and from its supervisor) and must still stop as it should.
            logger.warning("Ctrl+C again: stopping now, without waiting")
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(FORCED_EXIT)
        if not stop.is_set() and on_stop is not None:
            on_stop()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping, signum)
        stack.callback(loop.remove_signal_handler, signum)
    async with asyncio.TaskGroup() as tasks:
        ending: list[asyncio.Task[Any]] = [tasks.create_task(stop.wait())]
        try:
            api_url = ""
            if api_server is not None:
                sockets = [api_socket] if api_socket is not None else None
                api_task = tasks.create_task(api_server.serve(sockets=sockets))
                ending.append(api_task)
                api_port = await _api_started(api_server, api_task, config.api.url())
                api_url = (
                    f"{'https' if config.api.certfile else 'http'}://"
                    f"{_host_for_url(config.api.host)}:{api_port}"
                )
            link_tasks = [tasks.create_task(link.run()) for link in links.values()]
            if role in SENDS:
                link_tasks.append(tasks.create_task(_escalate(node), name="escalation"))
            if role in SENDS and links:
                # Other processes (the node's API workers, `kuroshio link status`) read the
                # links' status from the store.
                link_tasks.append(
                    tasks.create_task(_keep_link_status(node, links), name="link status")
                )
            if feeds is not None:
                link_tasks.append(tasks.create_task(feeds.run(), name="feeds"))
            cot_where: dict[str, str] = {}
            if role in SENDS and config.cot:
                cot = CotService(node)
                cot_task = tasks.create_task(cot.run())
                link_tasks.append(cot_task)
                ending.append(cot_task)
                cot_where = await _cot_started(cot, cot_task)
            if on_ready is not None:
                on_ready(
                    ServeInfo(
                        party=node.party,
                        node=config.node.name,
                        federation_url=federation_url,
                        api_url=api_url,
                        pid=os.getpid(),
                        cot=cot_where,
                    )
                )
            await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
            ending[0].cancel()
            for task in link_tasks:
                task.cancel()
        finally:
            if api_server is not None and app is not None:
                end_streams(app)
                api_server.should_exit = True


async def _escalate(node: Node) -> None:
    """Escalate overdue messages for as long as the node serves (one process does it: the one
    running the links)."""
    while True:
        try:
            await asyncio.to_thread(node.escalate_messages)
        except KuroshioError as error:
            logger.warning("escalating overdue messages failed: %s", error)
        await asyncio.sleep(ESCALATION_CHECK_S)


async def _keep_link_status(node: Node, links: Mapping[str, Link]) -> None:
    """Write the links' status to the store within a second of a change, and at least every
    :data:`~kuroshio.exchange.status.KEEP_LIVE_S`, for other processes to read."""
    written: list[bytes] = []
    written_at = 0.0
    while True:
        statuses = [encode_live(link.status) for link in links.values()]
        if statuses != written or time.monotonic() - written_at >= KEEP_LIVE_S:
            try:
                await asyncio.to_thread(_write_link_status, node, statuses)
                written, written_at = statuses, time.monotonic()
            except KuroshioError as error:
                logger.warning("writing the links' status failed: %s", error)
        await asyncio.sleep(LINK_STATUS_CHECK_S)


def _write_link_status(node: Node, statuses: list[bytes]) -> None:
    with node.store.transaction() as tx:
        keep_live(tx, statuses, dt.datetime.now(dt.UTC))


@dataclasses.dataclass(frozen=True)
class _SharedListener:
    """The federation socket a ``receive`` process accepts on, and how many processes do."""

    sock: socket.socket | None
    receivers: int

    def share(self, node: Node) -> int:
        """How many partners' connections one receiving process holds before it lets the
        others take the next one first."""
        direct = sum(1 for partner in node.partners.values() if not _over_nats(partner))
        return max(1, math.ceil(direct / max(1, self.receivers)))


async def _exchange(
    node: Node,
    stack: contextlib.AsyncExitStack,
    role: Role,
    shared: _SharedListener,
    *,
    told: bool,
) -> tuple[str, dict[str, Link]]:
    """The federation listener (partners' links in) and one sending link per partner, as far as
    ``role`` runs them; where partners reach the node, and the links (not yet running; ``told``:
    the node's other processes wake them, see :class:`Link`)."""
    config = node.config
    wss = WssTransport(
        node.identity, node.partners, max_frame_bytes=config.exchange.max_frame_bytes
    )
    url = ""
    endpoint = FederationEndpoint(node, Inbox(node))
    endpoint.on_partner = node.notify_partner_seen
    stack.push_async_callback(endpoint.close)
    if role in RECEIVES:
        if shared.sock is not None:
            share = shared.share(node)
            listener = await wss.listen_on(
                shared.sock, endpoint.handle, endpoint.on_refused, share=share
            )
            # The supervisor asks (SIGUSR1) when a receiving process has come up: links held
            # beyond this process's share move to it.
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGUSR1, endpoint.shed, share)
            stack.callback(loop.remove_signal_handler, signal.SIGUSR1)
        else:
            listener = await wss.listen(
                config.federation.host, config.federation.port, endpoint.handle, endpoint.on_refused
            )
        stack.push_async_callback(listener.close)
        url = f"https://{_host_for_url(config.federation.host)}:{listener.port}"
    if role not in SENDS:
        return url, {}
    nats = _nats_transport(node)
    if nats is not None:
        stack.push_async_callback(nats.close)
        nats_listener = await nats.listen(
            config.federation.host, 0, endpoint.handle, endpoint.on_refused
        )
        stack.push_async_callback(nats_listener.close)

    def transport_for(partner: Partner) -> Transport:
        return nats if nats is not None and _over_nats(partner) else wss

    links = {
        party: Link(node, partner, transport_for(partner), told=told)
        for party, partner in node.partners.items()
    }
    for link in links.values():
        stack.callback(link.close)

    def partner_seen(party: str) -> None:
        if (link := links.get(party)) is not None:
            link.partner_seen()

    # A partner's hello, in this process or in a receiving process of the node, wakes the link.
    node.add_partner_listener(partner_seen)
    stack.callback(node.remove_partner_listener, partner_seen)

    def wake_links() -> None:
        for link in links.values():
            link.wake()

    node.add_listener(wake_links)
    stack.callback(node.remove_listener, wake_links)
    return url, links


async def _api_started(server: uvicorn.Server, task: asyncio.Task[None], url: str) -> int:
    """The port the operator API listens on, once it does."""
    while not server.started:
        if task.done():
            task.result()
            raise ConfigError(f"the operator API could not listen on {url}")
        await asyncio.sleep(0.02)
    return int(server.servers[0].sockets[0].getsockname()[1])


async def _cot_started(cot: CotService, task: asyncio.Task[None]) -> dict[str, str]:
    """Where the Cursor-on-Target outputs listen, once they do (or why they could not)."""
    ready = asyncio.ensure_future(cot.ready())
    await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        task.result()
        raise ConfigError("the Cursor-on-Target outputs stopped before they listened")
    return ready.result()


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a task group failed with (the first, when several failed at once)."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


__all__ = ["Role", "ServeInfo", "check_api_binding", "serve"]
