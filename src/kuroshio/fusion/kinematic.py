"""Kinematic tracks from one party's point reports, and track-to-track association, on Stone Soup.

Point reports (radar plots, positional reports) of one party, kind and platform class are
tracked with a constant-velocity Kalman filter and global-nearest-neighbour assignment; tracks of
different parties are compared on a common time grid with Stone Soup's counting technique. It
does not gate daily or area reports: :mod:`kuroshio.fusion.gating` does.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import shapely
from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
from stonesoup.dataassociator.tracktotrack import TrackToTrackCounting
from stonesoup.hypothesiser.distance import DistanceHypothesiser
from stonesoup.measures import Euclidean, Mahalanobis
from stonesoup.models.measurement.linear import LinearGaussian
from stonesoup.models.transition.linear import (
    CombinedLinearGaussianTransitionModel,
    ConstantVelocity,
)
from stonesoup.predictor.kalman import KalmanPredictor
from stonesoup.smoother.kalman import KalmanSmoother
from stonesoup.types.detection import Detection
from stonesoup.types.hypothesis import SingleHypothesis
from stonesoup.types.prediction import GaussianStatePrediction
from stonesoup.types.state import GaussianState
from stonesoup.types.track import Track
from stonesoup.updater.kalman import KalmanUpdater

from kuroshio.fusion.gating import (
    DEFAULT_GATES,
    MAX_COAST,
    GateConfig,
    Unit,
    channel_of,
    sigma_km,
)
from kuroshio.geo.shapes import LocalPlane as Plane
from kuroshio.model import Observation, Point

T2T_STEP: Final = dt.timedelta(minutes=2)
MISSED_DISTANCE: Final = 3.0
"""Mahalanobis distance beyond which a plot does not update a track."""
ACCELERATION_NOISE: Final = {"air": 5e-6, "sea": 2e-8}
"""Process noise of the constant-velocity model, km²/s³."""
START_SPEED_KMS: Final = {"air": 0.3, "sea": 0.015}


class _Transition(CombinedLinearGaussianTransitionModel):  # type: ignore[misc]
    """The constant-velocity model with its matrices kept per time step: plots of one radar
    come at a few steps, and building the block matrix again for each is most of a prediction.
    The arrays kept are read-only, so no caller can change them in place."""

    def _kept(self, kind: str, compute: Any, kwargs: dict[str, Any]) -> Any:
        cache: dict[tuple[str, Any], Any] = self.__dict__.setdefault("_kept_arrays", {})
        key = (kind, kwargs.get("time_interval"))
        found = cache.get(key)
        if found is None:
            found = compute(**kwargs)
            found.setflags(write=False)
            cache[key] = found
        return found

    def matrix(self, **kwargs: Any) -> Any:
        return self._kept("matrix", super().matrix, kwargs)

    def covar(self, **kwargs: Any) -> Any:
        return self._kept("covar", super().covar, kwargs)


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


class _Filter:
    def __init__(self, kind: str) -> None:
        q = ACCELERATION_NOISE.get(kind, ACCELERATION_NOISE["sea"])
        self.transition = _Transition([ConstantVelocity(q), ConstantVelocity(q)])
        self.predictor = KalmanPredictor(self.transition)
        self.updater = KalmanUpdater(measurement_model=None)
        self.associator = GNNWith2DAssignment(
            DistanceHypothesiser(
                self.predictor, self.updater, Mahalanobis(), missed_distance=MISSED_DISTANCE
            )
        )
        self.start_speed = START_SPEED_KMS.get(kind, 0.015)


def _detection(observation: Observation, plane: Plane) -> Detection:
    assert isinstance(observation.geometry, Point)
    x, y = plane.to_km(*observation.geometry.coordinates)
    sigma = sigma_km(observation)
    model = LinearGaussian(ndim_state=4, mapping=(0, 2), noise_covar=np.diag([sigma**2] * 2))
    return Detection(
        np.array([[x], [y]]),
        timestamp=_naive(observation.observed_at),
        measurement_model=model,
        metadata={"id": observation.id},
    )


def track_plots(
    plots: Sequence[Observation], config: GateConfig = DEFAULT_GATES, *, follow: bool = False
) -> list[tuple[tuple[Observation, ...], Track, Plane]]:
    """One series' plots (one channel, kind, class) as tracks: (members, Stone Soup track, plane).

    The result depends on the set of plots only: they are taken in (time, id) order. ``follow``:
    the plots are the updates of one source track (a live feed's), which its source has already
    associated: each updates the one track, ungated, so a track is never split by a turn.
    """
    ordered = sorted(plots, key=lambda o: (o.observed_at, o.id))
    if not ordered:
        return []
    lons = [o.geometry.positions()[0][0] for o in ordered]
    lats = [o.geometry.positions()[0][1] for o in ordered]
    plane = Plane(round(sum(lons) / len(lons), 2), round(sum(lats) / len(lats), 2))
    tracker = _Filter(ordered[0].kind)
    by_id = {o.id: o for o in ordered}
    tracks: list[Track] = []
    members: dict[int, list[Observation]] = {}
    scans: dict[dt.datetime, list[Observation]] = {}
    for observation in ordered:
        scans.setdefault(observation.observed_at, []).append(observation)
    for moment, scan in scans.items():
        timestamp = _naive(moment)
        live = {t for t in tracks if timestamp - t.timestamp <= MAX_COAST}
        detections = {_detection(o, plane) for o in scan}
        used: set[str] = set()
        if follow and tracks:
            track = tracks[0]
            for detection in sorted(detections, key=lambda d: d.metadata["id"]):
                prediction = tracker.predictor.predict(track[-1], timestamp=timestamp)
                track.append(tracker.updater.update(SingleHypothesis(prediction, detection)))
                members[id(track)].append(by_id[detection.metadata["id"]])
                used.add(detection.metadata["id"])
        elif live:
            hypotheses = tracker.associator.associate(live, detections, timestamp)
            for track in sorted(live, key=lambda t: members[id(t)][0].id):
                hypothesis = hypotheses[track]
                if hypothesis.measurement:
                    track.append(tracker.updater.update(hypothesis))
                    found = by_id[hypothesis.measurement.metadata["id"]]
                    members[id(track)].append(found)
                    used.add(found.id)
        for detection in sorted(detections, key=lambda d: d.metadata["id"]):
            if detection.metadata["id"] in used:
                continue
            sigma = float(math.sqrt(detection.measurement_model.noise_covar[0, 0]))
            x, y = (float(v) for v in detection.state_vector.ravel())
            speed = tracker.start_speed
            # A wide prior at the first plot, updated by it, so every state is an update (the
            # smoother needs the prediction behind each one).
            prior = GaussianStatePrediction(
                np.array([[x], [0.0], [y], [0.0]]),
                np.diag([(10 * sigma) ** 2, speed**2, (10 * sigma) ** 2, speed**2]),
                timestamp=timestamp,
            )
            first = tracker.updater.update(SingleHypothesis(prior, detection))
            track = Track([first])
            tracks.append(track)
            members[id(track)] = [by_id[detection.metadata["id"]]]
    smoother = KalmanSmoother(tracker.transition)
    return [(tuple(members[id(t)]), smoother.smooth(t), plane) for t in tracks]


def track_unit(members: tuple[Observation, ...], track: Track, plane: Plane) -> Unit:
    """A kinematic track as a unit for association (keyed by its first plot)."""
    first = members[0]
    positions = [m.geometry.positions()[0] for m in members]
    shape = shapely.Point(positions[0]) if len(positions) == 1 else shapely.LineString(positions)
    platform = first.platform
    counts = [m.platform.count if m.platform else 1 for m in members]
    return Unit(
        key=f"track:{first.id}",
        origin=first.origin,
        channel=f"{channel_of(first)}/track",
        kind=first.kind,
        start=members[0].observed_at,
        end=members[-1].observed_at,
        shape=shape,
        sigma_km=float(np.median([sigma_km(m) for m in members])),
        platform_class=platform.platform_class if platform else None,
        type_code=_common_type(members),
        count=sorted(counts)[(len(counts) - 1) // 2],  # the median: one plot may miscount
        hulls=frozenset(h for m in members if m.platform for h in m.platform.hull_numbers),
        members=members,
        kinematic=True,
        states=(track, plane),
    )


def _common_type(members: Sequence[Observation]) -> str | None:
    types = sorted({m.platform.type for m in members if m.platform and m.platform.type})
    return types[0] if len(types) == 1 else None


def _state_at(track: Track, plane: Plane, moment: dt.datetime, kind: str) -> GaussianState:
    predictor = _Filter(kind).predictor
    earlier = [s for s in track.states if s.timestamp <= moment]
    prior = earlier[-1] if earlier else track.states[0]
    state = prior if prior.timestamp == moment else predictor.predict(prior, timestamp=moment)
    return GaussianState(state.state_vector, state.covar, timestamp=moment)


def tracks_associated(a: Unit, b: Unit, config: GateConfig = DEFAULT_GATES) -> float | None:
    """Stone Soup's counting technique on two parties' kinematic tracks: cost ≤ 1, or None.

    Both tracks are sampled on a common grid over the time they share (each predicted by its
    own filter), in one plane; they are associated when their states stay within the gate for
    three consecutive steps.
    """
    if a.kind != b.kind or a.states is None or b.states is None:
        return None
    start, end = max(a.start, b.start), min(a.end, b.end)
    if end < start:
        return None
    track_a, plane_a = a.states
    track_b, plane_b = b.states
    grid: list[dt.datetime] = []
    moment = _naive(start)
    while moment <= _naive(end):
        grid.append(moment)
        moment += T2T_STEP
    if len(grid) < 3:
        return _handover(a, b, config)
    sampled_a = Track([_state_at(track_a, plane_a, t, a.kind) for t in grid])
    # b's states, moved into a's plane, so one Euclidean distance compares them.
    moved: list[GaussianState] = []
    for t in grid:
        state = _state_at(track_b, plane_b, t, b.kind)
        vector = state.state_vector
        lon, lat = plane_b.to_lonlat(float(vector[0, 0]), float(vector[2, 0]))
        x, y = plane_a.to_km(lon, lat)
        moved.append(
            GaussianState(
                np.array([[x], [vector[1, 0]], [y], [vector[3, 0]]]), state.covar, timestamp=t
            )
        )
    sampled_b = Track(moved)
    threshold = max(config.sigmas * math.hypot(a.sigma_km, b.sigma_km), config.min_gate_km)
    associator = TrackToTrackCounting(
        association_threshold=threshold,
        consec_pairs_confirm=3,
        consec_misses_end=2,
        measure=Euclidean(mapping=[0, 2]),
        pos_map=[0, 2],
    )
    found = associator.associate_tracks({sampled_a}, {sampled_b})
    if not found.associations:
        return None
    measure = Euclidean(mapping=[0, 2])
    distances = [measure(p, q) for p, q in zip(sampled_a.states, sampled_b.states, strict=True)]
    covered = sum(
        (assoc.time_range.end - assoc.time_range.start).total_seconds()
        for assoc in found.associations
    )
    shared = (grid[-1] - grid[0]).total_seconds() or 1.0
    if covered < 0.5 * shared:
        return None  # together for a moment only: crossing, not one sortie
    return min(float(np.median(distances)) / threshold, 1.0)


def _handover(a: Unit, b: Unit, config: GateConfig) -> float | None:
    """Tracks that barely meet in time: the earlier one, predicted by its filter to the later
    one's first plots (at most three, within the coasting time), must fall on them."""
    early, late = sorted((a, b), key=lambda unit: (unit.start, unit.key))
    if late.start - early.end > MAX_COAST:
        return None
    track, plane = early.states
    worst = 0.0
    checked = 0
    for member in late.members[:3]:
        if member.observed_at - early.end > MAX_COAST:
            break
        moment = _naive(member.observed_at)
        state = _state_at(track, plane, moment, early.kind)
        assert isinstance(member.geometry, Point)
        x, y = plane.to_km(*member.geometry.coordinates)
        distance = math.hypot(
            float(state.state_vector[0, 0]) - x, float(state.state_vector[2, 0]) - y
        )
        spread = math.sqrt(max(float(state.covar[0, 0]), float(state.covar[2, 2])))
        limit = max(config.sigmas * math.hypot(spread, sigma_km(member)), config.min_gate_km)
        worst = max(worst, distance / limit)
        checked += 1
    if not checked or worst > 1.0:
        return None
    return worst
