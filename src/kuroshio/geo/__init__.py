"""Reference geography (zones and gates as package data) and the events derived from tracks.

``load()`` gives the zones; ``derive_events(observation)`` gives the events one observation
implies. Nothing here reads observations from a store or publishes events.
"""

from kuroshio.errors import GeographyError, UnknownZoneError
from kuroshio.geo.events import derive_all, derive_events, event_id, observation_span
from kuroshio.geo.zones import Geography, Side, Zone, ZoneKind, load, parse

__all__ = [
    "Geography",
    "GeographyError",
    "Side",
    "UnknownZoneError",
    "Zone",
    "ZoneKind",
    "derive_all",
    "derive_events",
    "event_id",
    "load",
    "observation_span",
    "parse",
]
