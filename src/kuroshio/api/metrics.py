"""``GET /metrics``: where the node's links, feeds and store stand, in Prometheus's text format,
for the monitoring a watch centre already runs.

Every figure is read from the store when the scraper asks, so every process of a node (an API
worker beside the process that runs the links and feeds) gives the same answer, and nothing is
counted in memory. Counts and times only: no observation, no partner's URL, no error
text. The route needs the ``monitor`` role, the least of all (``kuroshio user add prometheus
--role monitor``); what each metric means is in docs/deployment.md ("Monitoring").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.concurrency import run_in_threadpool

from kuroshio import __version__
from kuroshio.api.access import needs
from kuroshio.exchange.status import LinkReport, LinkStatus, link_reports
from kuroshio.feeds.status import FeedReport, feed_reports
from kuroshio.node import Node
from kuroshio.store.backend import Reader
from kuroshio.store.transaction import Transaction

router = APIRouter(tags=["monitoring"], dependencies=[Depends(needs("monitor"))])

FEED_COUNTERS: Final = (
    ("frames", "Frames read from the feed, good or bad"),
    ("malformed", "Frames that could not be read (counted, sampled, skipped)"),
    ("updates", "Track updates decoded"),
    ("thinned", "Updates not kept by the track thinning"),
    ("dropped", "Kept updates lost because the feed's queue was full"),
    ("delivered", "Observations handed to the store"),
    ("restarts", "Times the feed was started again after failing"),
)
"""The counters of :class:`~kuroshio.feeds.feed.FeedStatus` exposed as ``kuroshio_feed_*``.
They count from the start of the process that runs the feed."""


@dataclasses.dataclass(frozen=True)
class NodeFigures:
    """One snapshot's figures as Prometheus metric families (a collector of one scrape)."""

    node: Node
    links: Sequence[LinkReport]
    feeds: Sequence[FeedReport]
    stored_versions: int
    audit_entries: int

    def collect(self) -> Iterator[Metric]:
        config = self.node.config
        yield InfoMetricFamily(
            "kuroshio_node",
            "The party and name of this node, and the version it runs",
            value={"party": self.node.party, "node": config.node.name, "version": __version__},
        )
        yield CounterMetricFamily(
            "kuroshio_stored_versions",
            "Observation versions stored by this node, its own and received (the history's seq)",
            value=self.stored_versions,
        )
        yield CounterMetricFamily(
            "kuroshio_audit_entries",
            "Entries in the node's hash-chained audit log",
            value=self.audit_entries,
        )
        yield from _link_families(self.links)
        yield from _feed_families(self.feeds)


def _timestamp(at: dt.datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _families(
    family: type[GaugeMetricFamily] | type[CounterMetricFamily],
    prefix: str,
    labels: list[str],
    described: Iterable[tuple[str, str]],
) -> dict[str, Any]:
    """One metric family of ``family`` per (name, help text), named ``prefix`` + name."""
    return {name: family(prefix + name, text, labels=labels) for name, text in described}


def _link_families(links: Sequence[LinkReport]) -> Iterator[Metric]:
    label = ["partner"]
    gauges = _families(
        GaugeMetricFamily,
        "kuroshio_link_",
        label,
        (
            ("pending_items", "Items released to the partner, not yet in a sealed batch"),
            ("held_items", "Of the pending items, those waiting out a release delay"),
            ("unacked_items", "Items in sealed batches the partner has not yet receipted"),
            ("running", "1 while a process of this node runs the link to the partner"),
            ("connected", "1 while the running link is connected to the partner"),
            ("failed_attempts", "Failed attempts to reach the partner since it last connected"),
            ("last_sealed_timestamp_seconds", "When the last batch to the partner was sealed"),
            ("last_acked_timestamp_seconds", "When the partner's last receipt was stored"),
            ("last_received_timestamp_seconds", "When the partner's last batch was taken in"),
        ),
    )
    counters = _families(
        CounterMetricFamily,
        "kuroshio_link_",
        label,
        (
            ("batches_sealed", "Batches sealed for the partner (the last one's seq)"),
            ("batches_acked", "Batches the partner has receipted (the last one's seq)"),
            ("batches_received", "Batches taken in from the partner (the last one's seq)"),
        ),
    )
    for link in links:
        party, out, into = [link.partner], link.outgoing, link.incoming
        gauges["pending_items"].add_metric(party, out.pending)
        gauges["held_items"].add_metric(party, out.held)
        gauges["unacked_items"].add_metric(party, out.unacked_items)
        counters["batches_sealed"].add_metric(party, out.sealed_seq)
        counters["batches_acked"].add_metric(party, out.acked_seq)
        counters["batches_received"].add_metric(party, into.last_seq)
        live: LinkStatus | None = link.live
        gauges["running"].add_metric(party, 0 if live is None else 1)
        if live is not None:
            gauges["connected"].add_metric(party, 1 if live.connected else 0)
            gauges["failed_attempts"].add_metric(party, live.failed_attempts)
        times: Mapping[str, dt.datetime | None] = {
            "last_sealed_timestamp_seconds": out.last_sealed_at,
            "last_acked_timestamp_seconds": out.last_acked_at,
            "last_received_timestamp_seconds": into.updated_at,
        }
        for name, at in times.items():
            value = _timestamp(at)
            if value is not None:  # never: no sample, rather than 1970
                gauges[name].add_metric(party, value)
    yield from gauges.values()
    yield from counters.values()


def _feed_families(feeds: Sequence[FeedReport]) -> Iterator[Metric]:
    labels = ["feed", "kind"]
    up = GaugeMetricFamily("kuroshio_feed_up", "1 while the feed is up and reading", labels=labels)
    queued = GaugeMetricFamily(
        "kuroshio_feed_queued", "Updates waiting in the feed's queue for the store", labels=labels
    )
    reported = GaugeMetricFamily(
        "kuroshio_feed_last_report_timestamp_seconds",
        "When the process running the feed last wrote its status",
        labels=labels,
    )
    counters = _families(CounterMetricFamily, "kuroshio_feed_", labels, FEED_COUNTERS)
    for feed in feeds:
        names = [feed.name, feed.kind]
        up.add_metric(names, 1 if feed.state == "up" else 0)
        when = _timestamp(feed.reported_at)
        if when is not None:
            reported.add_metric(names, when)
        status = feed.status
        if status is None:
            continue
        queued.add_metric(names, status.queued)
        for name, _ in FEED_COUNTERS:
            counters[name].add_metric(names, getattr(status, name))
    yield up
    yield queued
    yield reported
    yield from counters.values()


def figures(node: Node, reader: Reader, live: Mapping[str, LinkStatus] | None) -> NodeFigures:
    """The node's figures as its store holds them now (``live``: the sending links' status where
    this process runs them; else as the store keeps it). Links, feeds and the audit log are read
    from one snapshot."""
    urls = {party: partner.url for party, partner in node.partners.items()}

    def read(tx: Transaction) -> tuple[list[LinkReport], list[FeedReport], int]:
        now = dt.datetime.now(dt.UTC)
        head = tx.audit.head()
        return (
            link_reports(tx, urls, live),
            feed_reports(node.config.feeds, tx.feeds.all(), now),
            0 if head is None else head[0],
        )

    links, feeds, audited = reader.read(read)
    return NodeFigures(node, links, feeds, reader.change_head(), audited)


@router.get(
    "/metrics",
    summary="The node's links, feeds and store as Prometheus metrics (the monitor role)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    node: Node = request.app.state.node
    reader: Reader = request.app.state.reader
    live: Mapping[str, LinkStatus] | None = request.app.state.links or None
    snapshot = await run_in_threadpool(figures, node, reader, live)
    return Response(generate_latest(snapshot), media_type=CONTENT_TYPE_LATEST)


__all__ = ["FEED_COUNTERS", "NodeFigures", "figures", "router"]
