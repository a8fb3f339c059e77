"""What a node's feeds are doing, as any process of the node can see it: the status the process
running them last reported, beside the configuration.

The process that runs a node's feeds (``kuroshio serve``, its exchange process under
``--workers``, or ``kuroshio feed run``) writes each feed's :class:`~kuroshio.feeds.FeedStatus`
to the store every :data:`REPORT_INTERVAL_S`; :func:`feed_reports` reads those rows against the
configured feeds for ``kuroshio feed status``, ``GET /api/feeds`` and the picture's header. A
report older than :data:`STALE_AFTER_S` means no process runs the feed (``not running``). Pure:
no I/O here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from kuroshio.feeds.feed import FeedStatus

REPORT_INTERVAL_S: Final = 2.0
"""How often the process running the feeds writes their status to the store."""
STALE_AFTER_S: Final = 15.0
"""A status not written again for this long is no process's any more."""

ReportState = Literal["starting", "up", "down", "stopped", "not running"]


class FeedReport(msgspec.Struct, frozen=True, kw_only=True):
    """One configured feed: its state and, while a process runs it, its last status."""

    name: str
    kind: str
    endpoint: str
    state: ReportState
    """``down``: failing and being restarted (see ``status.last_error``); ``not running``: no
    process of the node runs it (the node is not serving, or stopped it)."""
    reported_at: dt.datetime | None
    """When the running process last wrote the status (None: never)."""
    status: FeedStatus | None
    """Counters, last error and samples, as last written (None: never run)."""


_decoder = msgspec.json.Decoder(FeedStatus)


def encode_status(status: FeedStatus) -> bytes:
    return msgspec.json.encode(status)


def feed_reports(
    configured: Mapping[str, Mapping[str, Any]],
    rows: Sequence[tuple[str, dt.datetime, bytes]],
    now: dt.datetime,
) -> list[FeedReport]:
    """Each configured feed (``[feeds.NAME]`` tables) with its stored status (``rows``: feed,
    reported at, body), by name."""
    stored = {name: (at, body) for name, at, body in rows}
    reports: list[FeedReport] = []
    for name in sorted(configured):
        table = configured[name]
        endpoint = str(table.get("listen") or table.get("connect") or "")
        if table.get("connect") is not None:
            endpoint += " (connect)"
        found = stored.get(name)
        status = None
        at = None
        state: ReportState = "not running"
        if found is not None:
            at = found[0]
            try:
                status = _decoder.decode(found[1])
            except msgspec.DecodeError:
                status = None
            fresh = (now - at).total_seconds() <= STALE_AFTER_S
            if status is not None and fresh:
                state = status.state
        reports.append(
            FeedReport(
                name=name,
                kind=str(table.get("kind", "")),
                endpoint=status.endpoint if status is not None else endpoint,
                state=state,
                reported_at=at,
                status=status,
            )
        )
    return reports


__all__ = [
    "REPORT_INTERVAL_S",
    "STALE_AFTER_S",
    "FeedReport",
    "ReportState",
    "encode_status",
    "feed_reports",
]
