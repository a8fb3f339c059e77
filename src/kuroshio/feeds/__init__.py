"""Live feeds: air-defence radar (ASTERIX), AIS, ADS-B and TAK clients (CoT), as tracks.

A feed listens (UDP, multicast, TCP, TLS with client certificates) or connects to its source,
decodes each frame into track updates carrying the source's own track identity, keeps them at a
configured rate per track and turns them into observations of the node's own party, handed in
batches to a sink (``Node.ingest``). :class:`FeedSupervisor` restarts a failing feed with
back-off; :func:`replay` runs a capture file through a feed. Starting feeds with ``kuroshio
serve`` and their commands and API are not here: they sit above, and call these.
"""

from kuroshio.errors import CaptureError, FeedConfigError, FeedSocketError
from kuroshio.feeds.base import Decoder, Framer, MalformedFrame, TrackUpdate, track_id
from kuroshio.feeds.capture import ReplaySummary, read_capture, replay
from kuroshio.feeds.config import (
    FEED_KINDS,
    AisFeed,
    AsterixFeed,
    BeastFeed,
    CotFeed,
    Endpoint,
    FeedConfig,
    RadarSite,
    SbsFeed,
    TlsFiles,
    parse_endpoint,
    parse_feeds,
)
from kuroshio.feeds.feed import Feed, FeedStatus, MalformedSample, Sink
from kuroshio.feeds.observations import ObservationMapper, observation_id
from kuroshio.feeds.supervisor import FeedSupervisor, restart_delay
from kuroshio.feeds.tracks import Thinning, TrackThinner

__all__ = [
    "FEED_KINDS",
    "AisFeed",
    "AsterixFeed",
    "BeastFeed",
    "CaptureError",
    "CotFeed",
    "Decoder",
    "Endpoint",
    "Feed",
    "FeedConfig",
    "FeedConfigError",
    "FeedSocketError",
    "FeedStatus",
    "FeedSupervisor",
    "Framer",
    "MalformedFrame",
    "MalformedSample",
    "ObservationMapper",
    "RadarSite",
    "ReplaySummary",
    "SbsFeed",
    "Sink",
    "Thinning",
    "TlsFiles",
    "TrackThinner",
    "TrackUpdate",
    "observation_id",
    "parse_endpoint",
    "parse_feeds",
    "read_capture",
    "replay",
    "restart_delay",
    "track_id",
]
