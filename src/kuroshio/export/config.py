"""The configuration of a node's Cursor-on-Target outputs: one ``[cot.NAME]`` table each in
``kuroshio.toml``.

An output either ``listen``s for TAK clients (``tcp://`` or ``tls://`` with client certificates,
as a TAK Server's streaming port) or ``connect``s to a TAK Server and pushes to it; it speaks
XML or TAK protocol (``protocol = "proto"``); its audience and filter say what may and what
should go out (:mod:`kuroshio.export.release`). Unknown fields are refused. This module opens no
sockets.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from kuroshio.export.release import DEFAULT_TLP, Audience, BBox, OutputFilter, OutputTlp
from kuroshio.feeds.config import Endpoint, TlsFiles, parse_endpoint
from kuroshio.model import Kind, PartyCode

DEFAULT_STALE_S: Final = 300
DEFAULT_HISTORY_S: Final = 3_600
DEFAULT_FUSED_EVERY_S: Final = 30


class CotOutput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One Cursor-on-Target output of the node."""

    listen: str | None = None
    """``tcp://host:port`` or ``tls://host:port``: TAK clients connect here."""
    connect: str | None = None
    """``tcp://`` or ``tls://`` of a TAK Server to push to (client mode)."""
    tls: TlsFiles | None = None
    """Listening: the certificate, key and the CA of the client certificates taken. Connecting:
    the CA the server's certificate chains to and this node's client certificate and key."""
    protocol: Literal["xml", "proto"] = "xml"
    """``xml`` events, or TAK protocol version 1 (protobuf, stream framing)."""
    audience: tuple[PartyCode, ...] = ()
    """Parties whose people watch this output (empty: the node's own party only)."""
    tlp_max: OutputTlp = DEFAULT_TLP
    origins: tuple[PartyCode, ...] = ()
    """Origins sent (empty: every origin)."""
    kinds: tuple[Kind, ...] = ("air", "sea")
    area: BBox | None = None
    """min_lon, min_lat, max_lon, max_lat: only items that touch it."""
    fused: bool = True
    """Also send sorties fused from two or more parties' reports."""
    stale_s: Annotated[int, msgspec.Meta(ge=10, le=86_400)] = DEFAULT_STALE_S
    """How long a TAK client keeps an item after it was sent."""
    history_s: Annotated[int, msgspec.Meta(ge=0, le=7 * 86_400)] = DEFAULT_HISTORY_S
    """A client that connects is first sent the items of this many seconds back."""
    fused_every_s: Annotated[int, msgspec.Meta(ge=5, le=3_600)] = DEFAULT_FUSED_EVERY_S
    max_clients: Annotated[int, msgspec.Meta(ge=1, le=1_000)] = 64

    def __post_init__(self) -> None:
        if (self.listen is None) == (self.connect is None):
            raise ValueError("give exactly one of listen and connect")
        endpoint = self.endpoint
        if endpoint.scheme not in ("tcp", "tls"):
            raise ValueError("Cursor-on-Target goes out over tcp:// or tls://")
        if endpoint.scheme == "tls":
            tls = self.tls
            if self.listen is not None and (
                tls is None or not tls.certfile or not tls.keyfile or not tls.cafile
            ):
                raise ValueError(
                    "listening on tls:// needs tls.certfile, tls.keyfile and tls.cafile (the CA "
                    "of the TAK clients' certificates)"
                )
            if tls is not None and (tls.certfile is None) != (tls.keyfile is None):
                raise ValueError("give tls.certfile and tls.keyfile together")
        elif self.tls is not None:
            raise ValueError("tls is for tls:// endpoints only")
        OutputFilter(area=self.area)  # checks the area

    @property
    def endpoint(self) -> Endpoint:
        url = self.listen if self.listen is not None else self.connect
        assert url is not None
        try:
            return parse_endpoint(url)
        except ValueError as error:
            raise ValueError(str(error)) from None

    @property
    def rule(self) -> Audience:
        return Audience(parties=self.audience, tlp_max=self.tlp_max)

    @property
    def choice(self) -> OutputFilter:
        return OutputFilter(
            origins=self.origins, kinds=self.kinds, area=self.area, fused=self.fused
        )
