"""A node's feeds while it serves: each configured feed supervised, its observations stored
through the node's own door, its status written where every process of the node can read it.

:class:`NodeFeeds` builds one :class:`~kuroshio.feeds.Feed` per ``[feeds.NAME]`` table with
``Node.ingest`` (run in a worker thread) as its sink, so a feed's observations are signed into
the audit log, released under the agreements and derive track events like any the node stores.
Each feed runs under a :class:`~kuroshio.feeds.FeedSupervisor`: a failure shows the feed
``down`` and restarts it with back-off, and nothing a feed does stops the node or its links. A
store that refuses the status report is logged and tried again. Assembly only: decoding,
thinning and sockets are :mod:`kuroshio.feeds`'.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

from kuroshio.errors import FeedConfigError
from kuroshio.feeds import Feed, FeedSupervisor, parse_feeds
from kuroshio.feeds.capture import ReplaySummary, replay
from kuroshio.feeds.status import REPORT_INTERVAL_S, encode_status
from kuroshio.model import Observation
from kuroshio.node import CONFIG_NAME, Node

log = logging.getLogger("kuroshio.feeds")


class NodeFeeds:
    """The feeds of ``node`` (``names``: only these; default every configured feed)."""

    def __init__(self, node: Node, names: Sequence[str] | None = None) -> None:
        self.node = node
        configs = parse_feeds(node.config.feeds, location=str(node.directory / CONFIG_NAME))
        unknown = sorted(set(names or ()) - set(configs))
        if unknown:
            known = ", ".join(sorted(configs)) or "none"
            where = node.directory / CONFIG_NAME
            raise FeedConfigError(f"{where}: no feed {', '.join(unknown)} (configured: {known})")
        chosen = sorted(configs) if names is None else list(names)
        self.feeds = [
            Feed(name, configs[name], origin=node.party, sink=self._sink(name), base=node.directory)
            for name in chosen
        ]

    def _sink(self, name: str) -> _Ingest:
        return _Ingest(self.node, f"feed {name}")

    def feed(self, name: str) -> Feed:
        return next(feed for feed in self.feeds if feed.name == name)

    async def run(self) -> None:
        """Run every feed, supervised, and report their status, until cancelled."""
        if not self.feeds:
            return
        try:
            async with asyncio.TaskGroup() as group:
                for feed in self.feeds:
                    group.create_task(FeedSupervisor(feed).run(), name=f"feed {feed.name}")
                group.create_task(self._reporting(), name="feed status")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.report)

    async def replay(self, name: str, path: Path, *, speed: float | None) -> ReplaySummary:
        """Run a capture through one feed into the node, reporting its status as it goes."""
        feed = self.feed(name)
        reporting = asyncio.create_task(self._reporting())
        try:
            return await replay(feed, path, speed=speed)
        finally:
            reporting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporting
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.report)

    async def _reporting(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.report)
            except Exception as error:  # the store is away: the feeds go on all the same
                log.warning("feed status not written: %s", error)
            await asyncio.sleep(REPORT_INTERVAL_S)

    def report(self) -> None:
        """Write every feed's status to the store now."""
        now = dt.datetime.now(dt.UTC)
        rows = [(feed.name, now, encode_status(feed.status())) for feed in self.feeds]
        with self.node.store.transaction() as tx:
            tx.feeds.report(rows, configured=sorted(self.node.config.feeds))


class _Ingest:
    """A feed's sink: ``Node.ingest`` in a worker thread, so the event loop keeps receiving."""

    def __init__(self, node: Node, via: str) -> None:
        self.node = node
        self.via = via

    async def __call__(self, observations: Sequence[Observation]) -> None:
        await asyncio.to_thread(self.node.ingest, observations, via=self.via)


__all__ = ["NodeFeeds"]
