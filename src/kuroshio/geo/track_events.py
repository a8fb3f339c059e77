"""Events along a track, as its updates arrive: each step from one update to the next is judged.

A live feed gives a track as a sequence of point observations sharing ``track``. The step from
the update before to a new one is a short line, judged as any drawn track is
(:func:`kuroshio.geo.events.derive_events`): median-line crossings and strait transits with their
direction, entries into ADIZs; the first update of a track is judged as a point (an ADIZ it is
first seen in is entered). An event is derived once per track: its id is a hash of the origin, the
track, the event kind, the zone and the direction, so the same crossing found again (a replayed
capture, an update that came twice) is the same event, and so is a second eastbound crossing of
one track. An update older than the newest one of its track yields nothing (it does not move the
track on). Pure: the store keeps the heads (:mod:`kuroshio.store.tracks`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple

import msgspec

from kuroshio.geo.events import derive_events
from kuroshio.geo.zones import Geography, load
from kuroshio.model import Event, LineString, Observation, Point


class Fix(NamedTuple):
    """Where a track was last seen: the newest update before the one being judged."""

    at: dt.datetime
    lon: float
    lat: float
    key: tuple[str, int]
    """(id, version) of that update."""


def is_track_update(observation: Observation) -> bool:
    """True for an observation that is one point of a source track."""
    return (
        isinstance(observation.track, str)
        and isinstance(observation.geometry, Point)
        and not observation.retracted
        and observation.kind in ("air", "sea")
    )


def fix_of(observation: Observation) -> Fix:
    assert isinstance(observation.geometry, Point)
    lon, lat = observation.geometry.coordinates
    return Fix(observation.observed_at, lon, lat, observation.key)


def step_events(
    observation: Observation, before: Fix | None, geography: Geography | None = None
) -> list[Event]:
    """Events of one track update, given the track's newest update before it (None: the first).

    Only for track updates (:func:`is_track_update`); an update not later than ``before``
    yields nothing.
    """
    geography = load() if geography is None else geography
    if before is None:
        return [
            _of_track(event, observation, ()) for event in derive_events(observation, geography)
        ]
    if observation.observed_at <= before.at:
        return []
    here = fix_of(observation)
    if (here.lon, here.lat) == (before.lon, before.lat):
        return []
    step = msgspec.structs.replace(
        observation,
        geometry=LineString(coordinates=((before.lon, before.lat), (here.lon, here.lat))),
        observed_at=before.at,
        until=observation.observed_at,
    )
    return [
        _of_track(event, observation, (before.key,)) for event in derive_events(step, geography)
    ]


def track_event_id(origin: str, track: str, kind: str, zone: str, direction: str | None) -> str:
    """The id of an event of one track: the same for the same kind, zone and direction."""
    text = f"track\x1f{origin}\x1f{track}\x1f{kind}\x1f{zone}\x1f{direction or ''}"
    return "ev-" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _of_track(event: Event, observation: Observation, before: tuple[tuple[str, int], ...]) -> Event:
    """The event as one of the track: its id, both updates it rests on, its time as interpolated
    between two fixes (an observed step, not a span a source summed up)."""
    assert isinstance(observation.track, str)
    return msgspec.structs.replace(
        event,
        id=track_event_id(
            observation.origin, observation.track, event.kind, event.zone, event.direction
        ),
        observations=(*before, observation.key),
        remarks=f"{event.remarks} (track {observation.track})" if event.remarks else None,
        interval=msgspec.UNSET,
        estimated=msgspec.UNSET,
    )


__all__ = ["Fix", "fix_of", "is_track_update", "step_events", "track_event_id"]
