"""The observation model: validation names the path and the reason; canonical bytes are stable."""

from __future__ import annotations

import datetime as dt
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kuroshio.model import (
    MAX_VERTICES,
    ClosestApproach,
    Kinematics,
    LineString,
    Observation,
    Point,
    Source,
    canonical_bytes,
    decode_observation,
    json_schema,
)
from observations import as_json, observation, observations


@given(observations())
@settings(max_examples=300)
def test_decode_of_canonical_encoding_gives_the_same_observation(obs: Observation) -> None:
    assert decode_observation(canonical_bytes(obs)) == obs


@given(observations())
@settings(max_examples=200)
def test_equal_observations_encode_to_equal_bytes(obs: Observation) -> None:
    # Rebuild from plain JSON values with the keys in another order: still the same bytes.
    shuffled = dict(reversed(list(as_json(obs).items())))
    again = msgspec.convert(shuffled, Observation)
    assert again == obs
    assert canonical_bytes(again) == canonical_bytes(obs)


def test_canonical_bytes_normalise_time_zone_and_negative_zero() -> None:
    utc = observation(at=dt.datetime(2022, 8, 5, 2, 0, tzinfo=dt.UTC), lon=121.0, lat=0.0)
    taipei = observation(
        at=dt.datetime(2022, 8, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        lon=121.0,
        lat=-0.0,
    )
    assert canonical_bytes(utc) == canonical_bytes(taipei)
    assert b'"observed_at":"2022-08-05T02:00:00Z"' in canonical_bytes(utc)


def test_whole_numbers_built_in_python_sign_the_same_as_after_a_round_trip() -> None:
    built = msgspec.structs.replace(
        observation(),
        source=Source(sensor="radar", confidence=1, uncertainty_m=500),
        kinematics=Kinematics(course_deg=90, speed_mps=200, altitude_m=9000),
    )
    for codec in (msgspec.json, msgspec.msgpack):
        again = codec.decode(codec.encode(built), type=Observation)
        assert canonical_bytes(again) == canonical_bytes(built)


LATER_FIELDS = {"crossed_median_line", "approaches", "track"}
"""Optional fields added after the first records were signed: left out while unset, so that
those records keep their bytes."""


def test_canonical_bytes_sort_keys_and_carry_every_field() -> None:
    encoded = json.loads(canonical_bytes(observation()))
    assert list(encoded) == sorted(encoded)
    assert set(encoded) == set(Observation.__struct_fields__) - LATER_FIELDS
    tracked = json.loads(canonical_bytes(observation(track="ais:416123456")))
    assert set(tracked) == set(Observation.__struct_fields__) - (LATER_FIELDS - {"track"})
    assert list(tracked) == sorted(tracked)


def test_later_fields_are_kept_when_set_and_round_trip() -> None:
    plain = observation()
    line = LineString(coordinates=((121.7, 25.1), (121.8, 26.3)))
    richer = msgspec.structs.replace(
        plain,
        crossed_median_line=2,
        approaches=(ClosestApproach(place="基隆", distance_nmi=43, line=line),),
    )
    encoded = json.loads(canonical_bytes(richer))
    assert encoded["crossed_median_line"] == 2
    assert encoded["approaches"] == [
        {
            "place": "基隆",
            "distance_nmi": 43.0,
            "line": {"type": "LineString", "coordinates": [[121.7, 25.1], [121.8, 26.3]]},
        }
    ]
    assert decode_observation(canonical_bytes(richer)) == richer
    # Unset, they change nothing: the bytes are those of the record without them.
    without = {k: v for k, v in encoded.items() if k not in LATER_FIELDS}
    assert json.loads(canonical_bytes(plain)) == without


def test_a_record_without_a_track_keeps_the_bytes_it_had_before_tracks_existed() -> None:
    # The canonical bytes of this record as written before Observation.track was added.
    before = (
        b'{"geometry":{"coordinates":[121.0,25.0],"type":"Point"},"id":"TWN:x:1","kind":"air",'
        b'"kinematics":null,"marking":{"control":{"max_hops":0,"rerelease":false,"to":[]},'
        b'"releasable_to":[],"tlp":"AMBER"},"observed_at":"2024-01-01T00:00:00Z","origin":"TWN",'
        b'"platform":null,"provenance":{"batch":null,"hops":0,"importer":null,"partner":null,'
        b'"record":null,"transforms":[]},"remarks":null,"retracted":false,"source":'
        b'{"confidence":0.5,"sensor":"other","uncertainty_m":0.0},"until":null,"version":1}'
    )
    decoded = decode_observation(before)
    assert decoded.track is msgspec.UNSET
    assert canonical_bytes(decoded) == before
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(decoded), type=Observation) == decoded


def test_a_track_round_trips_and_a_bad_one_is_refused_with_its_path() -> None:
    tracked = observation(track="cat062:25/100:4980")
    assert decode_observation(canonical_bytes(tracked)).track == "cat062:25/100:4980"
    assert "$.track" in _error(dict(GOOD, track="no scheme"))


def _error(record: dict[str, object]) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        decode_observation(json.dumps(record))
    return str(info.value)


GOOD = {
    "id": "TWN:radar:1",
    "origin": "TWN",
    "kind": "air",
    "observed_at": "2022-08-05T10:00:00+08:00",
    "geometry": {"type": "Point", "coordinates": [121.5, 22.5]},
}


def test_a_good_record_decodes() -> None:
    obs = decode_observation(json.dumps(GOOD))
    assert obs.observed_at == dt.datetime(2022, 8, 5, 2, 0, tzinfo=dt.UTC)
    assert obs.version == 1
    assert obs.marking.tlp == "AMBER"  # the default marking is restrictive


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"geometry": {"type": "Point", "coordinates": [181, 22]}}, "$.geometry.coordinates[0]"),
        ({"geometry": {"type": "Point", "coordinates": [121, -91]}}, "$.geometry.coordinates[1]"),
        ({"observed_at": "2022-08-05T10:00:00"}, "timezone"),
        ({"observed_at": "1850-01-01T00:00:00Z"}, "outside"),
        ({"origin": "XYZ", "id": "XYZ:1:2"}, "unknown party code 'XYZ'"),
        ({"origin": "twn"}, "unknown party code 'twn' in origin"),
        ({"origin": "TWNX"}, "$.origin"),
        ({"marking": {"releasable_to": ["JPN", "J P"]}}, "'J P' in marking.releasable_to"),
        ({"marking": {"control": {"to": ["jpn"]}}}, "'jpn' in marking.control.to"),
        ({"platform": {"nationality": "C1N"}}, "'C1N' in platform.nationality"),
        ({"provenance": {"partner": "ZZZ"}}, "'ZZZ' in provenance.partner"),
        ({"id": "JPN:radar:1"}, "not scoped to its origin"),
        ({"kind": "space"}, "$.kind"),
        ({"version": 0}, "$.version"),
        ({"platform": {"count": "two"}}, "$.platform.count"),
        ({"until": "2022-08-05T01:00:00Z"}, "until is earlier"),
        ({"colour": "red"}, "unknown field `colour`"),
        (
            {"geometry": {"type": "Polygon", "coordinates": [[[1, 2], [2, 3], [3, 3], [1, 3]]]}},
            "not closed",
        ),
    ],
)
def test_bad_records_are_rejected_with_path_and_reason(
    change: dict[str, object], expected: str
) -> None:
    assert expected in _error({**GOOD, **change})


def test_geometry_vertex_count_is_bounded() -> None:
    line = [[120.0 + i * 1e-5, 22.0] for i in range(MAX_VERTICES + 1)]
    message = _error({**GOOD, "geometry": {"type": "LineString", "coordinates": line}})
    assert "$.geometry.coordinates" in message


def test_coordinates_are_rounded_to_about_a_centimetre() -> None:
    point = Point(coordinates=(121.123456789, 22.987654321))
    assert point.coordinates == (121.1234568, 22.9876543)


_ON_THE_GRID = st.builds(
    lambda units, places: units / 10**places,
    st.integers(-(10**12), 10**12),
    st.integers(0, 9),
)


@given(
    st.one_of(
        _ON_THE_GRID,
        st.floats(allow_nan=False, allow_infinity=True),
        st.floats(-180, 180),
        st.builds(lambda x, nudge: x + nudge, _ON_THE_GRID, st.sampled_from([5e-8, -5e-8, 1e-15])),
        st.integers(-(10**6), 10**6),
    )
)
@settings(max_examples=3000)
def test_a_coordinate_is_rounded_as_round_to_seven_places(value: float) -> None:
    # A coordinate's bytes are part of every signature: the rounding is exactly Python's.
    expected = round(value, 7) + 0.0
    point = Point(coordinates=(value, -0.0))
    assert [str(x) for x in point.coordinates] == [str(expected), "0.0"]
    line = LineString(coordinates=((0.0, value), (value, -0.0)))
    assert [str(x) for position in line.coordinates for x in position] == [
        "0.0",
        str(expected),
        str(expected),
        "0.0",
    ]


def test_json_schema_describes_the_public_records() -> None:
    schema = json_schema()
    assert {"Observation", "Event", "Party", "Marking"} <= set(schema["$defs"])
    observation_schema = schema["$defs"]["Observation"]
    assert observation_schema["properties"]["origin"]["pattern"] == "^[A-Z]{3}$"
    marking = schema["$defs"]["Marking"]["properties"]["releasable_to"]
    assert marking["items"]["pattern"] == "^[A-Z]{3}$"
    assert {"id", "origin", "kind", "observed_at", "geometry"} <= set(
        observation_schema["required"]
    )
