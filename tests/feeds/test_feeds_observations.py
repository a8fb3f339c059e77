"""Track updates become observations of the node's own party, one per kept update."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from kuroshio.feeds.base import TrackUpdate, track_id
from kuroshio.feeds.observations import ObservationMapper, observation_id
from kuroshio.model import Marking, canonical_bytes, decode_observation

T0 = dt.datetime(2024, 8, 5, 2, 0, 0, 123_456, tzinfo=dt.UTC)
MARKING = Marking(tlp="AMBER", releasable_to=("JPN",))


def mapper(**options: object) -> ObservationMapper:
    values: dict[str, object] = {
        "origin": "TWN", "feed": "radar", "sensor": "radar", "marking": MARKING
    }  # fmt: skip
    values.update(options)
    return ObservationMapper(**values)  # type: ignore[arg-type]


def update(**fields: object) -> TrackUpdate:
    values: dict[str, object] = {
        "track": "cat062:25/100:4980", "kind": "air", "at": T0, "lon": 121.9, "lat": 20.9,
        "course_deg": 45.0, "speed_mps": 230.0, "altitude_m": 7_800.0,
    }  # fmt: skip
    values.update(fields)
    return TrackUpdate(**values)  # type: ignore[arg-type]


def test_an_update_is_an_observation_of_the_own_party_on_its_track() -> None:
    observation = mapper()(update())
    assert observation.id == "TWN:radar:cat062:25/100:4980@20240805T020000.123Z"
    assert observation.id == observation_id("TWN", "radar", "cat062:25/100:4980", T0)
    assert (observation.version, observation.origin, observation.kind) == (1, "TWN", "air")
    assert observation.track == "cat062:25/100:4980"
    assert observation.observed_at == dt.datetime(2024, 8, 5, 2, 0, 0, 123_000, tzinfo=dt.UTC)
    assert observation.geometry.coordinates == (121.9, 20.9)  # type: ignore[union-attr]
    assert observation.kinematics is not None
    assert (observation.kinematics.course_deg, observation.kinematics.altitude_m) == (45.0, 7_800.0)
    assert observation.marking == MARKING
    assert observation.source.sensor == "radar"
    assert observation.provenance.importer == "feed:radar"
    assert observation.platform is None  # the source said nothing of what it is


def test_the_same_update_gives_the_same_bytes_and_they_decode_to_it() -> None:
    first, again = mapper()(update()), mapper()(update())
    assert canonical_bytes(first) == canonical_bytes(again)
    assert decode_observation(canonical_bytes(first)) == first


def test_two_updates_of_one_track_differ_only_by_their_time() -> None:
    later = mapper()(update(at=T0 + dt.timedelta(seconds=5)))
    assert later.id == "TWN:radar:cat062:25/100:4980@20240805T020005.123Z"
    assert later.track == mapper()(update()).track


def test_what_the_source_says_of_the_platform_is_kept_and_nothing_more() -> None:
    said = mapper()(update(platform_class="fighter", label="CoT a-h-A-M-F-F", name="BANDIT 1"))
    assert said.platform is not None
    assert (said.platform.platform_class, said.platform.type, said.platform.label) == (
        "fighter", None, "CoT a-h-A-M-F-F"
    )  # fmt: skip
    assert said.remarks == "BANDIT 1"


def test_a_stated_uncertainty_wins_over_the_feeds_default() -> None:
    default = mapper(uncertainty_m=1_500.0, confidence=0.8)
    assert default(update()).source.uncertainty_m == 1_500.0
    stated = default(update(uncertainty_m=12.0)).source
    assert (stated.uncertainty_m, stated.confidence, stated.sensor) == (12.0, 0.8, "radar")


def test_motion_the_model_cannot_hold_is_left_out_not_refused() -> None:
    observation = mapper()(update(speed_mps=4_000.0, altitude_m=150_000.0, course_deg=-90.0))
    assert observation.kinematics is not None
    assert observation.kinematics.speed_mps is None
    assert observation.kinematics.altitude_m is None
    assert observation.kinematics.course_deg == 270.0


def test_any_uid_a_tak_client_sends_gives_a_valid_id() -> None:
    track = track_id("cot", "{ANDROID 5d4c} ü+1")
    assert track == "cot:+7BANDROID+205d4c+7D+20+C3+BC+2B1"
    observation = mapper(feed="tak", sensor="report")(update(track=track))
    assert decode_observation(canonical_bytes(observation)).track == track
    long = track_id("cot", "x" * 500)
    assert long.startswith("cot:sha256+") and len(long) < 60
    assert msgspec.json.decode(canonical_bytes(mapper()(update(track=long))))["track"] == long


def test_an_update_off_the_globe_or_without_a_scheme_is_refused() -> None:
    # a damaged CAT062 I105 can say 500° of latitude; built records are not schema-checked
    with pytest.raises(ValueError, match="not on the globe"):
        mapper()(update(lat=500.0))
    with pytest.raises(ValueError, match="is not <scheme>:<identity>"):
        mapper()(update(track="4980"))
