"""Valid observation builders and hypothesis strategies shared by the tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from kuroshio.feeds.base import TrackUpdate
from kuroshio.model import (
    LineString,
    Marking,
    Observation,
    OriginatorControl,
    Platform,
    Point,
    Polygon,
    Source,
)

T0 = dt.datetime(2022, 8, 5, 2, 0, tzinfo=dt.UTC)


def observation(
    number: int = 0,
    *,
    origin: str = "TWN",
    version: int = 1,
    at: dt.datetime = T0,
    lon: float = 121.0,
    lat: float = 22.0,
    **fields: Any,
) -> Observation:
    """One plausible air observation; keyword arguments override fields."""
    values: dict[str, Any] = {
        "id": f"{origin}:test:{number}",
        "version": version,
        "origin": origin,
        "kind": "air",
        "observed_at": at,
        "geometry": Point(coordinates=(lon, lat)),
        "platform": Platform(type="H-6K", platform_class="bomber", count=2, nationality="CHN"),
        "source": Source(sensor="radar", confidence=0.9, uncertainty_m=1500.0),
    }
    values.update(fields)
    return Observation(**values)


def fighter_update(track: str, at: dt.datetime, lon: float, lat: float) -> TrackUpdate:
    """One update of a live radar feed's source track following a J-16."""
    return TrackUpdate(
        track=track,
        kind="air",
        at=at,
        lon=lon,
        lat=lat,
        platform_class="fighter",
        platform_type="J-16",
    )


def as_json(obs: Observation) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(obs)  # type: ignore[no-any-return]


lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
positions = st.tuples(lons, lats)
times = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=9))]
    ),
)
parties = st.sampled_from(["TWN", "JPN", "USA", "AUS", "IND", "PHL"])


@st.composite
def geometries(draw: st.DrawFn) -> Point | LineString | Polygon:
    shape = draw(st.sampled_from(["point", "line", "polygon"]))
    if shape == "point":
        return Point(coordinates=draw(positions))
    if shape == "line":
        return LineString(coordinates=tuple(draw(st.lists(positions, min_size=2, max_size=20))))
    ring = draw(st.lists(positions, min_size=3, max_size=12))
    return Polygon(coordinates=(tuple([*ring, ring[0]]),))


@st.composite
def observations(draw: st.DrawFn) -> Observation:
    origin = draw(parties)
    observed_at = draw(times)
    until = draw(
        st.one_of(
            st.none(), st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=2))
        )
    )
    return Observation(
        id=f"{origin}:{draw(st.from_regex(r'[A-Za-z0-9._:-]{1,40}', fullmatch=True))}",
        version=draw(st.integers(min_value=1, max_value=1000)),
        origin=origin,
        kind=draw(st.sampled_from(["air", "sea", "area"])),
        observed_at=observed_at,
        until=None if until is None else observed_at + until,
        geometry=draw(geometries()),
        platform=draw(
            st.one_of(
                st.none(),
                st.builds(
                    Platform,
                    type=st.sampled_from(["H-6K", "J-16", "Type 052D", None]),
                    platform_class=st.sampled_from(["bomber", "fighter", "destroyer", None]),
                    count=st.integers(min_value=1, max_value=50),
                    nationality=st.sampled_from(["CHN", "RUS", None]),
                    label=st.one_of(st.none(), st.text(max_size=30)),
                ),
            )
        ),
        marking=Marking(
            tlp=draw(st.sampled_from(["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"])),
            releasable_to=tuple(draw(st.lists(parties, max_size=3))),
            control=OriginatorControl(
                rerelease=draw(st.booleans()),
                to=tuple(draw(st.lists(parties, max_size=3))),
                max_hops=draw(st.integers(min_value=0, max_value=3)),
            ),
        ),
        remarks=draw(st.one_of(st.none(), st.text(max_size=200))),
        retracted=draw(st.booleans()),
    )
