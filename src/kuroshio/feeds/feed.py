"""A running feed: frames in, observations out to a sink, with counters that show how it goes.

:class:`Feed` ties one feed's parts together: per-source decoders (:meth:`Feed.source`), track
thinning and the mapping to observations at intake, a bounded queue (full: the observation is
dropped and counted) and :meth:`Feed.deliver`, which hands batches to the sink (in a node,
``Node.ingest`` run in a worker thread). A bad frame is counted, a sample of it kept and logged,
and skipped. :meth:`Feed.run` is one life of the feed (receiver and delivery together) and
raises when either fails; :mod:`kuroshio.feeds.supervisor` restarts it. Receiving is in
:mod:`kuroshio.feeds.receivers`, replay in :mod:`kuroshio.feeds.capture`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from kuroshio.feeds.base import Decoder, FeedState, Framer, MalformedFrame
from kuroshio.feeds.config import FeedConfig
from kuroshio.feeds.observations import ObservationMapper
from kuroshio.feeds.receivers import receive
from kuroshio.feeds.tracks import TrackThinner
from kuroshio.model import Observation

log = logging.getLogger("kuroshio.feeds")

Sink = Callable[[Sequence[Observation]], Awaitable[object]]
"""Where a feed's observations go; in a node, ``Node.ingest`` in a worker thread."""
SAMPLES_KEPT: Final = 5
"""Most recent malformed frames kept per feed, for status."""
LOG_INTERVAL_S: Final = 10.0
"""At most one malformed-frame warning per feed in this many seconds."""
SWEEP_INTERVAL_S: Final = 60.0
"""How often (in the updates' own time) tracks not heard for long are forgotten."""
MAX_DATAGRAM_SOURCES: Final = 1_024
"""Datagram senders whose decoder state is kept; the least recently heard go first."""


def _utc(posix: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(posix, dt.UTC)


class MalformedSample(msgspec.Struct, frozen=True, kw_only=True):
    """One bad frame: when, from whom, why, and its first bytes in hex."""

    at: dt.datetime
    peer: str
    reason: str
    sample: str


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What a feed is doing, for ``kuroshio feed status``, ``GET /api/feeds`` and the picture."""

    name: str
    kind: str
    endpoint: str
    state: FeedState
    since: dt.datetime
    """When the feed entered its state."""
    frames: int
    """Frames read, good or bad."""
    malformed: int
    """Frames that could not be read (counted, sampled, skipped)."""
    updates: int
    """Track updates decoded."""
    thinned: int
    """Updates not kept by the track thinning."""
    dropped: int
    """Kept updates lost because the queue was full."""
    delivered: int
    """Observations handed to the store."""
    queued: int
    queue_size: int
    tracks: int
    """Tracks the thinning remembers."""
    connections: int
    restarts: int
    skipped: dict[str, int]
    """Frames read well that carry nothing to keep, by reason."""
    last_error: str | None
    last_error_at: dt.datetime | None
    samples: tuple[MalformedSample, ...]


class FeedStats:
    """The live counters behind :class:`FeedStatus` (mutated by the feed, read by status)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.state: FeedState = "starting"
        self.since = clock()
        self.frames = self.malformed = self.updates = self.thinned = 0
        self.dropped = self.delivered = self.connections = self.restarts = 0
        self.skipped: Counter[str] = Counter()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.samples: deque[MalformedSample] = deque(maxlen=SAMPLES_KEPT)
        self._logged_at = float("-inf")
        self._unlogged = 0

    def enter(self, state: FeedState) -> None:
        if state != self.state:
            self.state = state
            self.since = self._clock()

    def failed(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        self.last_error_at = self._clock()

    def bad_frame(self, feed: str, peer: str, error: MalformedFrame, received_at: float) -> None:
        self.malformed += 1
        sample = MalformedSample(
            at=_utc(received_at), peer=peer, reason=error.reason, sample=error.sample.hex()
        )
        self.samples.append(sample)
        if received_at - self._logged_at >= LOG_INTERVAL_S:
            more = f" ({self._unlogged} more since the last warning)" if self._unlogged else ""
            log.warning(
                "feed %s: malformed frame from %s skipped: %s; sample %s%s",
                feed,
                peer,
                error.reason,
                sample.sample,
                more,
            )
            self._logged_at = received_at
            self._unlogged = 0
        else:
            self._unlogged += 1


class FeedSource:
    """One source of a feed (a connection, a datagram sender, a capture): its decoder and the
    framer of its stream."""

    def __init__(self, feed: Feed, decoder: Decoder, peer: str) -> None:
        self.feed = feed
        self.decoder = decoder
        self.peer = peer
        self._framer: Framer | None = None

    def push(self, data: bytes, received_at: float) -> list[Observation]:
        """Bytes of the stream; the observations kept from the frames they complete."""
        if self._framer is None:
            self._framer = self.decoder.framer()
        return self.feed.read(self, self._framer.push(data), received_at)

    def datagram(self, data: bytes, received_at: float) -> list[Observation]:
        return self.feed.read(self, self.decoder.datagram(data), received_at)


class Feed:
    """One configured feed of a node (see the module docstring).

    ``sink`` receives batches of observations; ``base`` resolves relative certificate paths.
    ``clock`` (POSIX seconds) dates live frames and status; tests and replay pass their own.
    """

    def __init__(
        self,
        name: str,
        config: FeedConfig,
        *,
        origin: str,
        sink: Sink,
        base: Path = Path("."),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.config = config
        self.base = base
        self.clock = clock
        self.stats = FeedStats(clock)
        self.queue: asyncio.Queue[Observation] = asyncio.Queue(config.queue)
        self.thinner = TrackThinner(config.thinning)
        self.mapper = ObservationMapper(
            origin=origin,
            feed=name,
            sensor=config.sensor_class,
            marking=config.marking,
            confidence=config.confidence,
            uncertainty_m=config.uncertainty_m,
        )
        self._sink = sink
        self.bound: tuple[str, int] | None = None
        """The address the receiver is bound to (listening on port 0 picks one)."""
        self._pending: list[Observation] = []
        self._datagram_sources: dict[str, FeedSource] = {}
        self._swept_at = float("-inf")

    # --- intake ------------------------------------------------------------------------------

    def source(self, peer: str) -> FeedSource:
        """A new source (a connection, a capture file) with its own decoder state."""
        return FeedSource(self, self.config.decoder(self.stats.skipped), peer)

    def datagram(self, data: bytes, peer: str, received_at: float) -> list[Observation]:
        """One datagram from ``peer``, decoded with that sender's own decoder state."""
        source = self._datagram_sources.pop(peer, None) or self.source(peer)
        self._datagram_sources[peer] = source
        if len(self._datagram_sources) > MAX_DATAGRAM_SOURCES:
            del self._datagram_sources[next(iter(self._datagram_sources))]
        return source.datagram(data, received_at)

    def read(
        self, source: FeedSource, frames: list[bytes | MalformedFrame], received_at: float
    ) -> list[Observation]:
        """Decode, thin and map frames of one source; bad frames are counted and sampled."""
        stats = self.stats
        kept: list[Observation] = []
        for frame in frames:
            stats.frames += 1
            if isinstance(frame, MalformedFrame):
                stats.bad_frame(self.name, source.peer, frame, received_at)
                continue
            try:
                updates = source.decoder.decode(frame, received_at)
            except MalformedFrame as error:
                stats.bad_frame(self.name, source.peer, error, received_at)
                continue
            except Exception as error:  # a decoding library tripped on it: still one bad frame
                log.debug("feed %s: decoder failed on a frame", self.name, exc_info=True)
                reason = f"decoder failed: {type(error).__name__}: {error}"
                stats.bad_frame(self.name, source.peer, MalformedFrame(reason, frame), received_at)
                continue
            for update in updates:
                stats.updates += 1
                if not self.thinner.admit(update):
                    stats.thinned += 1
                    continue
                try:
                    kept.append(self.mapper(update))
                except (msgspec.ValidationError, ValueError) as error:
                    reason = f"update of {update.track} is not a valid observation: {error}"
                    stats.bad_frame(
                        self.name, source.peer, MalformedFrame(reason, frame), received_at
                    )
        if received_at - self._swept_at >= SWEEP_INTERVAL_S:
            self.thinner.forget_before(received_at)
            self._swept_at = received_at
        return kept

    def offer(self, observations: Sequence[Observation]) -> None:
        """Queue observations from a live receiver; what does not fit is dropped and counted."""
        for observation in observations:
            try:
                self.queue.put_nowait(observation)
            except asyncio.QueueFull:
                self.stats.dropped += 1

    # --- delivery ----------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Hand queued observations to the sink in batches, forever. A failing sink raises (the
        batch is kept and handed first on the next life of the feed)."""
        batch_items = self.config.batch_items
        wait = self.config.batch_wait_ms / 1000.0
        while True:
            if not self._pending:
                self._pending.append(await self.queue.get())
                deadline = asyncio.get_running_loop().time() + wait
                while len(self._pending) < batch_items:
                    if self.queue.empty():
                        remaining = deadline - asyncio.get_running_loop().time()
                        if remaining <= 0:
                            break
                        try:
                            item = await asyncio.wait_for(self.queue.get(), remaining)
                        except TimeoutError:
                            break
                        self._pending.append(item)
                    else:
                        self._pending.append(self.queue.get_nowait())
            await self._hand_over()

    async def flush(self) -> None:
        """Hand everything queued now to the sink (the end of a replay, a shutdown)."""
        while self._pending or not self.queue.empty():
            while len(self._pending) < self.config.batch_items and not self.queue.empty():
                self._pending.append(self.queue.get_nowait())
            await self._hand_over()

    async def _hand_over(self) -> None:
        batch = self._pending
        await self._sink(batch)
        self.stats.delivered += len(batch)
        self._pending = []

    # --- a life of the feed ------------------------------------------------------------------

    async def run(self) -> None:
        """Receive and deliver until cancelled; raises when the receiver or the sink fails."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.deliver(), name=f"feed {self.name}: deliver")
            group.create_task(receive(self), name=f"feed {self.name}: receive")

    def status(self) -> FeedStatus:
        stats = self.stats
        return FeedStatus(
            name=self.name,
            kind=self.config.kind,
            endpoint=str(self.config.endpoint)
            + (" (connect)" if self.config.connect is not None else ""),
            state=stats.state,
            since=_utc(stats.since),
            frames=stats.frames,
            malformed=stats.malformed,
            updates=stats.updates,
            thinned=stats.thinned,
            dropped=stats.dropped,
            delivered=stats.delivered,
            queued=self.queue.qsize() + len(self._pending),
            queue_size=self.config.queue,
            tracks=len(self.thinner),
            connections=stats.connections,
            restarts=stats.restarts,
            skipped=dict(stats.skipped),
            last_error=stats.last_error,
            last_error_at=None if stats.last_error_at is None else _utc(stats.last_error_at),
            samples=tuple(stats.samples),
        )
