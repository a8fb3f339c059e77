"""Standing requests: whether an observation answers a partner's "tell me when…".

Pure: the events come from :func:`kuroshio.geo.events.derive_events` (the same derivation the
picture and the ledger use: strait transits, median-line crossings, ADIZ entries) and distances
from :mod:`kuroshio.geo.shapes`. Whether the partner may have the item at all is the release
policy's to say (see :mod:`kuroshio.messages.dialogue`); this module only matches.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from kuroshio.geo.events import derive_events
from kuroshio.geo.shapes import km_from_place
from kuroshio.geo.zones import load
from kuroshio.messages.thread import StandingRequest
from kuroshio.model import Event, Observation


def _platform_classes(observation: Observation) -> set[str]:
    platform = observation.platform
    if platform is None:
        return set()
    found = {platform.platform_class} if platform.platform_class else set()
    if isinstance(platform.classes, tuple):
        found.update(platform.classes)
    return found


def matches(
    request: StandingRequest,
    observation: Observation,
    now: dt.datetime,
    events: list[Event] | None = None,
) -> Event | bool:
    """The event that answers ``request`` (its zone named by name or id, e.g.
    ``gate-miyako``); True when no event is asked for and every other criterion holds; False
    when the observation does not answer it. ``events``: the observation's derived events,
    when already at hand."""
    if observation.retracted or (request.until is not None and now > request.until):
        return False
    if request.platform_class and not _platform_classes(observation) & set(request.platform_class):
        return False
    if request.near is not None:
        near = request.near
        if km_from_place(observation.geometry, near.lon, near.lat) > near.within_km:
            return False
    if request.event is None and request.zone is None:
        return True
    zones = _zone_names(request.zone)
    for event in derive_events(observation) if events is None else events:
        if (request.event is None or event.kind == request.event) and (
            not zones or event.zone in zones
        ):
            return event
    return False


def _zone_names(zone: str | None) -> frozenset[str]:
    """The names a zone given by id (``gate-miyako``) or name (``Miyako Strait``) goes by."""
    if zone is None:
        return frozenset()
    geography = load()
    return frozenset({zone, geography[zone].name} if zone in geography else {zone})


def alert_id(party: str, request_id: str, observation: Observation) -> str:
    """The id of the one alert an item (or the source track it updates) gives for a request:
    alerting again for each update of the same track would bury the watch officer."""
    subject = observation.track if isinstance(observation.track, str) else observation.id
    digest = hashlib.sha256(f"{request_id}\x00{subject}".encode()).hexdigest()[:32]
    return f"{party}:alert:{digest}"


__all__ = ["alert_id", "matches"]
