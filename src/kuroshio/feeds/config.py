"""The configuration of a node's feeds: one ``[feeds.NAME]`` table each in ``kuroshio.toml``.

Types are the schema: a table is a :data:`FeedConfig`, chosen by its ``kind`` (``asterix``,
``ais``, ``sbs``, ``beast``, ``cot``), with unknown fields refused and every error naming the
table and field. A feed either ``listen``s (``udp://``, ``tcp://``, ``tls://`` host:port; a
multicast group as host joins it) or ``connect``s to its source (``tcp://``, ``tls://``). This
module reads no files and opens no sockets; :meth:`FeedBase.decoder` makes the decoder it needs.
The decoders that stand on a library of the ``feeds`` extra (pyais, pyModeS, takproto) are
imported when such a feed starts, so a node without the extra still reads its configuration and
serves its ASTERIX feeds.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, NamedTuple
from urllib.parse import urlsplit

import msgspec

from kuroshio.errors import FeedConfigError
from kuroshio.feeds.asterix import AsterixDecoder
from kuroshio.feeds.asterix import RadarSite as Site
from kuroshio.feeds.base import Decoder
from kuroshio.feeds.tracks import Thinning
from kuroshio.model import Marking, SensorClass

FeedName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
        description="feed name: lower case, digits and '-', at most 40 characters",
    ),
]
Scheme = Literal["udp", "tcp", "tls"]
DEFAULT_QUEUE: Final = 10_000
DEFAULT_BATCH_ITEMS: Final = 500
DEFAULT_BATCH_WAIT_MS: Final = 200


class Endpoint(NamedTuple):
    """Where a feed listens or connects: ``udp://239.1.2.3:30062`` and the like."""

    scheme: Scheme
    host: str
    port: int

    @property
    def multicast(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_multicast
        except ValueError:
            return False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """``scheme://host:port``; raises ValueError saying what is wrong with ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("udp", "tcp", "tls"):
        raise ValueError(f"{url!r}: scheme must be udp://, tcp:// or tls://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 0 to 65535") from None
    if not parts.hostname or port is None:
        raise ValueError(f"{url!r}: give host and port, e.g. {parts.scheme}://127.0.0.1:30062")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{url!r}: only scheme://host:port is understood")
    return Endpoint(parts.scheme, parts.hostname, port)  # type: ignore[arg-type]


class RadarSite(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A radar whose CAT048 plots the feed places: its SAC/SIC and where it stands."""

    sac: Annotated[int, msgspec.Meta(ge=0, le=255)]
    sic: Annotated[int, msgspec.Meta(ge=0, le=255)]
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
    height_m: Annotated[float, msgspec.Meta(ge=-500.0, le=10_000.0)] = 0.0
    """Antenna height above the ellipsoid, metres."""


class TlsFiles(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Certificates for ``tls://``: listening, the feed's certificate and key and the CA whose
    client certificates it takes (as a TAK Server does); connecting, the CA that the source's
    certificate must chain to and optionally a client certificate and key."""

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None

    def resolved(self, base: Path) -> TlsFiles:
        """The same files with relative paths taken from ``base`` (the node directory)."""

        def at(name: str | None) -> str | None:
            return None if name is None else str(base / Path(name).expanduser())

        return TlsFiles(
            certfile=at(self.certfile), keyfile=at(self.keyfile), cafile=at(self.cafile)
        )


class FeedBase(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    """What every feed has; each kind adds its own options."""

    default_sensor: ClassVar[SensorClass] = "other"
    streams: ClassVar[tuple[Scheme, ...]] = ("tcp", "tls")
    datagrams: ClassVar[bool] = True

    listen: str | None = None
    """``udp://host:port`` (a multicast group as host joins it), ``tcp://`` or ``tls://``."""
    connect: str | None = None
    """``tcp://host:port`` or ``tls://``: the feed connects to its source instead."""
    interface: str = "0.0.0.0"
    """Address of the interface a multicast group is joined on."""
    marking: Marking = msgspec.field(default_factory=Marking)
    sensor: SensorClass | None = None
    """Sensor class of the observations; by default that of the kind (radar, ais, …)."""
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    uncertainty_m: Annotated[float, msgspec.Meta(ge=0.0, le=5_000_000.0)] = 0.0
    """Position uncertainty given to updates whose source states none."""
    thinning: Thinning = msgspec.field(default_factory=Thinning)
    queue: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = DEFAULT_QUEUE
    """Updates waiting to be stored; beyond it they are dropped and counted."""
    batch_items: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = DEFAULT_BATCH_ITEMS
    batch_wait_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = DEFAULT_BATCH_WAIT_MS
    tls: TlsFiles | None = None

    def __post_init__(self) -> None:
        if (self.listen is None) == (self.connect is None):
            raise ValueError("give exactly one of listen and connect")
        endpoint = self.endpoint
        if endpoint.scheme == "udp":
            if self.connect is not None:
                raise ValueError("connect takes tcp:// or tls://; udp:// is for listen")
            if not self.datagrams:
                raise ValueError(f"{self.kind} feeds come over {self._schemes()}, not udp://")
        elif endpoint.scheme not in self.streams:
            raise ValueError(
                f"{self.kind} feeds come over {self._schemes()}, not {endpoint.scheme}://"
            )
        elif endpoint.multicast:
            raise ValueError(f"{endpoint}: a multicast group takes udp://")
        if endpoint.scheme == "tls":
            self._check_tls()
        elif self.tls is not None:
            raise ValueError("tls is for tls:// endpoints only")

    def _schemes(self) -> str:
        schemes = (("udp",) if self.datagrams else ()) + self.streams
        return " or ".join(f"{scheme}://" for scheme in schemes)

    def _check_tls(self) -> None:
        tls = self.tls
        if self.listen is not None and (
            tls is None or not tls.certfile or not tls.keyfile or not tls.cafile
        ):
            raise ValueError(
                "listening on tls:// needs tls.certfile, tls.keyfile and tls.cafile (the CA "
                "of the client certificates it takes)"
            )
        if tls is not None and (tls.certfile is None) != (tls.keyfile is None):
            raise ValueError("give tls.certfile and tls.keyfile together")

    @property
    def kind(self) -> str:
        return str(msgspec.inspect.type_info(type(self)).tag)  # type: ignore[attr-defined]

    @property
    def endpoint(self) -> Endpoint:
        url = self.listen if self.listen is not None else self.connect
        assert url is not None
        return parse_endpoint(url)

    @property
    def sensor_class(self) -> SensorClass:
        return self.sensor or self.default_sensor

    def decoder(self, skipped: Counter[str]) -> Decoder:
        """A new decoder for one source of this feed."""
        raise NotImplementedError


@contextlib.contextmanager
def _needs_extra(kind: str) -> Iterator[None]:
    """A decoder's library missing becomes an error that says what to install."""
    try:
        yield
    except ImportError as error:
        raise FeedConfigError(
            f"{kind} feeds need {error.name}: install the extra with pip install 'kuroshio[feeds]'"
        ) from None


class AsterixFeed(FeedBase, frozen=True, kw_only=True, tag="asterix"):
    """ASTERIX CAT062 and CAT048 (over UDP, often multicast, or TCP)."""

    default_sensor: ClassVar[SensorClass] = "radar"
    streams: ClassVar[tuple[Scheme, ...]] = ("tcp",)

    radars: tuple[RadarSite, ...] = ()
    """Sites of the radars whose CAT048 plots this feed places."""
    categories: tuple[Literal[48, 62], ...] = (48, 62)

    def decoder(self, skipped: Counter[str]) -> Decoder:
        sites = {(r.sac, r.sic): Site(r.lon, r.lat, r.height_m) for r in self.radars}
        return AsterixDecoder(skipped, radars=sites, categories=frozenset(self.categories))


class AisFeed(FeedBase, frozen=True, kw_only=True, tag="ais"):
    """AIS NMEA 0183 sentences (over UDP or TCP)."""

    default_sensor: ClassVar[SensorClass] = "ais"
    streams: ClassVar[tuple[Scheme, ...]] = ("tcp",)

    def decoder(self, skipped: Counter[str]) -> Decoder:
        with _needs_extra("ais"):
            from kuroshio.feeds.ais import AisDecoder
        return AisDecoder(skipped)


class SbsFeed(FeedBase, frozen=True, kw_only=True, tag="sbs"):
    """ADS-B as SBS-1 BaseStation text (TCP, e.g. dump1090 port 30003)."""

    datagrams: ClassVar[bool] = False
    streams: ClassVar[tuple[Scheme, ...]] = ("tcp",)

    def decoder(self, skipped: Counter[str]) -> Decoder:
        with _needs_extra("sbs"):
            from kuroshio.feeds.adsb import SbsDecoder
        return SbsDecoder(skipped)


class BeastFeed(FeedBase, frozen=True, kw_only=True, tag="beast"):
    """ADS-B as Mode-S Beast binary (TCP, e.g. dump1090 or readsb port 30005)."""

    datagrams: ClassVar[bool] = False
    streams: ClassVar[tuple[Scheme, ...]] = ("tcp",)

    def decoder(self, skipped: Counter[str]) -> Decoder:
        with _needs_extra("beast"):
            from kuroshio.feeds.adsb import BeastDecoder
        return BeastDecoder(skipped)


class CotFeed(FeedBase, frozen=True, kw_only=True, tag="cot"):
    """Cursor-on-Target from TAK clients: XML or TAK protocol, over UDP (mesh), TCP or TLS."""

    default_sensor: ClassVar[SensorClass] = "report"

    def decoder(self, skipped: Counter[str]) -> Decoder:
        with _needs_extra("cot"):
            from kuroshio.feeds.cot import CotDecoder
        return CotDecoder(skipped)


FeedConfig = AsterixFeed | AisFeed | SbsFeed | BeastFeed | CotFeed
FEED_KINDS: Final = ("asterix", "ais", "sbs", "beast", "cot")


def parse_feeds(
    table: Mapping[str, Any], *, location: str = "kuroshio.toml"
) -> dict[str, FeedConfig]:
    """The ``[feeds]`` table of a node's configuration; raises :class:`FeedConfigError` with the
    file and field (``kuroshio.toml: feeds.radar.listen: ...``)."""
    feeds: dict[str, FeedConfig] = {}
    for name, value in table.items():
        try:
            msgspec.convert(name, type=FeedName)
        except msgspec.ValidationError:
            raise FeedConfigError(
                f"{location}: feeds.{name}: a feed name is lower case letters, digits and '-', "
                "at most 40 characters"
            ) from None
        try:
            feeds[name] = msgspec.convert(value, type=FeedConfig)
        except msgspec.ValidationError as error:
            raise FeedConfigError(f"{location}: {_feed_path(name, str(error))}") from None
    return feeds


def _feed_path(name: str, message: str) -> str:
    """``Expected int - at `$.queue``` → ``feeds.radar.queue: Expected int``."""
    text, _, path = message.rpartition(" - at `")
    if not text:
        return f"feeds.{name}: {message}"
    return f"feeds.{name}{path.rstrip('`')[1:]}: {text}"
