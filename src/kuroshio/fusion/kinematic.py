"""Kinematic tracks from one party's point reports, and track-to-track association, on Stone Soup.

Point reports (radar plots, positional reports) of one party, kind and platform class are
tracked with a constant-velocity Kalman filter and global-nearest-neighbour assignment; tracks of
different parties are compared on a common time grid with the counting technique (counted as
Stone Soup's ``TrackToTrackCounting`` counts, without its state objects). A live feed's source
track is filtered and smoothed as it grows, its reach kept with it, so an update costs about the
same however long the track (:class:`FollowedTrack`). It does not gate daily or area reports:
:mod:`kuroshio.fusion.gating` does.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import shapely
from stonesoup.dataassociator.neighbour import GNNWith2DAssignment
from stonesoup.hypothesiser.distance import DistanceHypothesiser
from stonesoup.measures import Mahalanobis
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
from stonesoup.types.track import Track
from stonesoup.types.update import GaussianStateUpdate
from stonesoup.updater.kalman import KalmanUpdater

from kuroshio.fusion.gating import (
    DEFAULT_GATES,
    MAX_COAST,
    GateConfig,
    Unit,
    channel_of,
    sigma_km,
)
from kuroshio.fusion.reach import Reach
from kuroshio.fusion.smoother import BLOCK, POSITION, VELOCITY, RunningSmoother, Smoothed
from kuroshio.geo.shapes import LocalPlane as Plane
from kuroshio.model import Observation, Point

T2T_STEP: Final = dt.timedelta(minutes=2)
MISSED_DISTANCE: Final = 3.0
"""Mahalanobis distance beyond which a plot does not update a track."""
ACCELERATION_NOISE: Final = {"air": 5e-6, "sea": 2e-8}
"""Process noise of the constant-velocity model, km²/s³."""
START_SPEED_KMS: Final = {"air": 0.3, "sea": 0.015}
COAST_REACH: Final = dt.timedelta(seconds=30)
"""A track's reach covers its states predicted this far past its end: the most the handover test
predicts it to another party's track whose first three plots lie within this of its start."""
EDGE_SPACING_KM: Final = 4.0
"""Samples along the edge of a track's box in its plane (turned into lon/lat for its reach) are
at most this far apart, and at most :data:`EDGE_SAMPLES` a side."""
EDGE_SAMPLES: Final = 16
_Box = tuple[float, float, float, float]
"""West, south, east, north."""
_Projection = tuple[_Box, float]
"""A lon/lat box (west, south, east, north) and how far (km) beyond it a point may lie."""
REACH_SLACK_KM: Final = 1.0
"""A growing source track's box (once it has more than :data:`BLOCK` states) is turned into
lon/lat this much wider on every side, and again only once the track's box leaves it (or falls
short of it by twice as much)."""


@functools.cache
def _edge(samples: int) -> Any:
    """The edge of the unit square, ``samples`` points a side (corners shared), counterclockwise:
    a box's edge samples, scaled and moved."""
    side = np.linspace(0.0, 1.0, samples)[:-1]
    return np.concatenate(
        (
            np.stack((side, np.zeros_like(side)), axis=1),
            np.stack((np.ones_like(side), side), axis=1),
            np.stack((1.0 - side, np.ones_like(side)), axis=1),
            np.stack((np.zeros_like(side), 1.0 - side), axis=1),
        )
    )


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

    def at(self, interval: dt.timedelta) -> tuple[Any, Any]:
        """The matrix and covariance for a time step, looked up directly (a live track asks
        at every update; Stone Soup's keyword checks cost more than the look-up)."""
        steps: dict[dt.timedelta, tuple[Any, Any]] = self.__dict__.setdefault("_steps", {})
        found = steps.get(interval)
        if found is None:
            found = (self.matrix(time_interval=interval), self.covar(time_interval=interval))
            steps[interval] = found
        return found

    def stacked(self, intervals: tuple[dt.timedelta, ...]) -> tuple[Any, Any]:
        """The matrices and covariances of a few time steps, stacked (k × 4 × 4 each) and kept:
        the handover test asks for the same few steps again and again."""
        kept: dict[tuple[dt.timedelta, ...], tuple[Any, Any]] = self.__dict__.setdefault(
            "_stacked", {}
        )
        found = kept.get(intervals)
        if found is None:
            steps = [self.at(interval) for interval in intervals]
            found = (
                np.array([matrix for matrix, _ in steps]),
                np.array([noise for _, noise in steps]),
            )
            found[0].setflags(write=False)
            found[1].setflags(write=False)
            if len(kept) < 4096:
                kept[intervals] = found
        return found


def _naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is dt.UTC:  # as reports mostly come: no conversion to make
        return moment.replace(tzinfo=None)
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
) -> list[tuple[tuple[Observation, ...], TrackStates]]:
    """One series' plots (one channel, kind, class) as tracks: (members, filtered states).

    The result depends on the set of plots only: they are taken in (time, id) order. ``follow``:
    the plots are the updates of one source track (a live feed's), which its source has already
    associated: each updates the one track, ungated, so a track is never split by a turn.
    """
    ordered = sorted(plots, key=lambda o: (o.observed_at, o.id))
    if not ordered:
        return []
    if follow:
        return follow_plots(ordered)
    plane = _plane_of(ordered)
    tracker = _Filter(ordered[0].kind)
    by_id = {o.id: o for o in ordered}
    tracks: list[Track] = []
    members: dict[int, list[Observation]] = {}
    scans: dict[dt.datetime, list[Observation]] = {}
    for observation in ordered:
        scans.setdefault(observation.observed_at, []).append(observation)
    for moment, scan in scans.items():
        timestamp = _naive(moment)
        # Lists in a fixed order (tracks by their first plot, plots by id), never sets: where two
        # assignments cost exactly the same (two aircraft crossing, plots without noise), the
        # assignment picks by the order it is given, which must not be the objects' addresses.
        live = sorted(
            (t for t in tracks if timestamp - t.timestamp <= MAX_COAST),
            key=lambda t: members[id(t)][0].id,
        )
        detections = [_detection(o, plane) for o in scan]
        used: set[str] = set()
        if live:
            hypotheses = tracker.associator.associate(live, detections, timestamp)
            for track in live:
                hypothesis = hypotheses[track]
                if hypothesis.measurement:
                    track.append(tracker.updater.update(hypothesis))
                    found = by_id[hypothesis.measurement.metadata["id"]]
                    members[id(track)].append(found)
                    used.add(found.id)
        for detection in detections:
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
    return [
        (tuple(members[id(t)]), TrackStates(plane, smoothed=smoother.smooth(t))) for t in tracks
    ]


def _plane_of(ordered: Sequence[Observation]) -> Plane:
    # Summed one by one, in order, as FollowedTrack sums a growing track's positions.
    lons = lats = 0.0
    for observation in ordered:
        lon, lat = observation.geometry.positions()[0]
        lons += lon
        lats += lat
    return Plane(round(lons / len(ordered), 2), round(lats / len(ordered), 2))


class TrackStates:
    """A kinematic track's states in its plane; the smoothed Stone Soup track is made when
    track-to-track association first asks for it."""

    def __init__(
        self, plane: Plane, *, smoothed: Track | None = None, followed: FollowedTrack | None = None
    ) -> None:
        self.plane = plane
        self._smoothed = smoothed
        self.followed = followed
        self._arrays: Smoothed | None = None

    @property
    def track(self) -> Track:
        """The smoothed track as Stone Soup states (a source track's made from its arrays)."""
        if self._smoothed is None:
            assert self.followed is not None
            self._smoothed = self.followed.smoothed()
        return self._smoothed

    @property
    def sampled(self) -> Smoothed | RunningSmoother:
        """The smoothed track's times, and its states one by one (a source track's made from
        its smoother when asked, not all of them)."""
        if self.followed is not None:
            return self.followed.smoother
        return self.smoothed

    @property
    def smoothed(self) -> Smoothed:
        """The smoothed track's times, means and covariances, as arrays."""
        if self._arrays is None:
            if self.followed is not None:
                self._arrays = self.followed.smoothed_arrays()
            else:
                self._arrays = Smoothed.of(self.track)
        return self._arrays


def _median(ordered: Sequence[float]) -> float:
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


class _Summary:
    """What a kinematic unit says of its plots, kept as plots are added one by one."""

    def __init__(self) -> None:
        self.positions: list[tuple[float, float]] = []
        self.line: list[tuple[float, float]] = []
        """The positions without repeats in a row (the fused item's line)."""
        self.sigmas: list[float] = []
        self.counts: list[int] = []
        self.types: set[str] = set()
        self.hulls: set[str] = set()
        self.bounds = (math.inf, math.inf, -math.inf, -math.inf)
        """West, south, east, north of the positions."""
        self._coordinates = np.empty((8, 2))

    def add(self, member: Observation) -> None:
        position = member.geometry.positions()[0]
        if not self.positions or self.line[-1] != position:
            self.line.append(position)
        count = len(self.positions)
        if count == len(self._coordinates):  # room for twice as many, copied once
            self._coordinates = np.concatenate((self._coordinates, np.empty((count, 2))))
        self._coordinates[count] = position
        self.positions.append(position)
        lon, lat = position
        west, south, east, north = self.bounds
        self.bounds = (min(west, lon), min(south, lat), max(east, lon), max(north, lat))
        bisect.insort(self.sigmas, sigma_km(member))
        platform = member.platform
        bisect.insort(self.counts, platform.count if platform else 1)
        if platform is not None:
            if platform.type:
                self.types.add(platform.type)
            self.hulls.update(platform.hull_numbers)

    @property
    def array(self) -> Any:
        """The positions as an array (n × 2), for shapely to take without a list of tuples."""
        return self._coordinates[: len(self.positions)]


def track_unit(
    members: tuple[Observation, ...], states: TrackStates, summary: _Summary | None = None
) -> Unit:
    """A kinematic track as a unit for association (keyed by its first plot)."""
    if summary is None:
        summary = _Summary()
        for member in members:
            summary.add(member)
    first = members[0]
    positions = summary.positions
    shape = (
        shapely.Point(positions[0]) if len(positions) == 1 else shapely.linestrings(summary.array)
    )
    platform = first.platform
    counts = summary.counts
    return Unit(
        key=f"track:{first.id}",
        origin=first.origin,
        channel=f"{channel_of(first)}/track",
        kind=first.kind,
        start=members[0].observed_at,
        end=members[-1].observed_at,
        shape=shape,
        sigma_km=_median(summary.sigmas),
        platform_class=platform.platform_class if platform else None,
        type_code=next(iter(summary.types)) if len(summary.types) == 1 else None,
        count=counts[(len(counts) - 1) // 2],  # the median: one plot may miscount
        hulls=frozenset(summary.hulls),
        members=members,
        kinematic=True,
        states=states,
    )


class FollowedTrack:
    """The updates of one source track (a live feed's) filtered one after another: its source
    has already associated them, so each updates the track ungated (a constant-velocity Kalman
    filter, the same model as :func:`track_plots`, in plain numpy), and a later update extends
    the track without filtering it again."""

    def __init__(self, first: Observation, plane: Plane) -> None:
        self.plane = plane
        self.kind = first.kind
        self._transition = _transition(first.kind)
        self.members: list[Observation] = []
        self.summary = _Summary()
        self._steps: list[tuple[dt.datetime, Any, Any, Any, Any]] = []
        """Per plot: time, predicted mean and covariance, updated mean and covariance."""
        self._lon_sum = 0.0
        self._lat_sum = 0.0
        self._sources: list[Any] = []
        self._first_sigma: float | None = None
        self._projected: tuple[tuple[float, float, float, float], _Projection | None] | None = None
        """The plane box last turned into lon/lat for the reach, and what it gave."""
        self._made: tuple[tuple[float, float, float, float], _Projection | None] | None = None
        """The reach's box last asked for, and what :meth:`projected` gives for it."""
        noise = ACCELERATION_NOISE.get(first.kind, ACCELERATION_NOISE["sea"])
        self.smoother = RunningSmoother(self._steps, noise, COAST_REACH.total_seconds())
        x, y = plane.to_km(*first.geometry.positions()[0])
        sigma = sigma_km(first)
        speed = START_SPEED_KMS.get(first.kind, START_SPEED_KMS["sea"])
        # A wide prior at the first plot, updated by it (as track_plots does).
        self._mean = np.array([[x], [0.0], [y], [0.0]])
        self._covar = np.diag([(10 * sigma) ** 2, speed**2, (10 * sigma) ** 2, speed**2])
        self._time = _naive(first.observed_at)
        FollowedTrack._update([(self, first)], [self._time], self._mean[None], self._covar[None])
        self.degrees = self.plane_with(())
        """The whole-degree point of the plane (what the plane depends on)."""

    @property
    def end(self) -> dt.datetime:
        return self.members[-1].observed_at

    def holds(self, unit: Unit) -> bool:
        """Whether the unit is this track as it is now."""
        return len(unit.members) == len(self.members) and unit.members[-1] is self.members[-1]

    def projected(self, box: tuple[float, float, float, float]) -> _Projection | None:
        """What :func:`_projected` gives for a box holding ``box``: the box last projected while
        it holds this one (it was projected :data:`REACH_SLACK_KM` wider on every side) and is
        not much wider, so a growing track's box is turned into lon/lat now and then, not at
        every update."""
        if self._made is not None and self._made[0] == box:  # made with the read's others
            return self._made[1]
        wanted = self._wanted(box)
        if wanted is None:
            assert self._projected is not None
            return self._projected[1]
        found = _projected(self.plane, wanted)
        self._keep(box, wanted, found)
        return found

    def _wanted(self, box: _Box) -> _Box | None:
        """The box to turn into lon/lat for ``box``; None when the one last projected holds it."""
        if len(self.members) <= BLOCK:  # a young track's box changes too much to keep
            return box
        slack = REACH_SLACK_KM
        if self._projected is not None:
            kept, _ = self._projected
            # Kept while it holds the box and is at most twice the slack wider (a young track's
            # box shrinks as its speed becomes known).
            wide = 2 * slack
            if (
                0.0 <= box[0] - kept[0] <= wide
                and 0.0 <= box[1] - kept[1] <= wide
                and 0.0 <= kept[2] - box[2] <= wide
                and 0.0 <= kept[3] - box[3] <= wide
            ):
                return None
        return (box[0] - slack, box[1] - slack, box[2] + slack, box[3] + slack)

    def _keep(
        self,
        box: tuple[float, float, float, float],
        wanted: tuple[float, float, float, float],
        found: _Projection | None,
    ) -> None:
        if len(self.members) > BLOCK:
            self._projected = (wanted, found)
        self._made = (box, found)

    @staticmethod
    def project_all(tracks: Sequence[FollowedTrack]) -> None:
        """Turn the boxes of the tracks' reaches that need it into lon/lat, one transform per
        plane (what :meth:`projected` gives for them next)."""
        by_plane: dict[tuple[int, int], list[tuple[FollowedTrack, Any, Any]]] = {}
        for track in tracks:
            box, _ = track.smoother.reach_box()
            wanted = track._wanted(box)
            if wanted is not None:
                by_plane.setdefault(track.plane.point, []).append((track, box, wanted))
        for entries in by_plane.values():
            found = _projected_many(entries[0][0].plane, [wanted for _, _, wanted in entries])
            for (track, box, wanted), projection in zip(entries, found, strict=True):
                track._keep(box, wanted, projection)

    def first_sigma(self) -> float:
        """The largest sigma of the first three plots (kept once there are three)."""
        if self._first_sigma is not None:
            return self._first_sigma
        found = max(sigma_km(member) for member in self.members[:3])
        if len(self.members) >= 3:
            self._first_sigma = found
        return found

    def line_of(self, unit: Unit) -> list[tuple[float, float]] | None:
        """The unit's positions without repeats in a row, when the unit is this track now."""
        return self.summary.line if self.holds(unit) else None

    def sources_of(self, unit: Unit) -> list[Any] | None:
        """The fused item's sources made so far (its first plots'), for the fused item to add
        the new ones to, when the unit is this track now."""
        return self._sources if self.holds(unit) else None

    def plane_with(self, plots: Sequence[Observation]) -> tuple[int, int]:
        """The whole-degree point of the plane the track would have with ``plots`` added."""
        lons, lats, count = self._lon_sum, self._lat_sum, len(self.members)
        for plot in plots:
            lon, lat = plot.geometry.positions()[0]
            lons += lon
            lats += lat
            count += 1
        return round(round(lons / count, 2)), round(round(lats / count, 2))

    def extend(self, plot: Observation) -> None:
        """Add a plot no earlier than the last one."""
        extend_tracks([(self, [plot])])

    @staticmethod
    def step_all(batch: Sequence[tuple[FollowedTrack, Observation]]) -> None:
        """Add a plot to each track (no earlier than its last): the filter's and the
        smoother's step of every track in one product each."""
        tracks = [track for track, _ in batch]
        times = [_naive(plot.observed_at) for _, plot in batch]
        steps = [
            track._transition.at(moment - track._time)
            for track, moment in zip(tracks, times, strict=True)
        ]
        matrices = np.array([matrix for matrix, _ in steps])
        means = np.array([track._mean for track in tracks])
        covars = np.array([track._covar for track in tracks])
        predicted = matrices @ means
        predicted_covars = matrices @ covars @ matrices.transpose(0, 2, 1)
        predicted_covars += np.array([noise for _, noise in steps])
        FollowedTrack._update(batch, times, predicted, predicted_covars)
        smoothers = [track.smoother for track in tracks]
        RunningSmoother.take_all(
            smoothers, matrices, (means, covars), (predicted, predicted_covars)
        )

    @staticmethod
    def _update(
        batch: Sequence[tuple[FollowedTrack, Observation]],
        times: list[dt.datetime],
        means: Any,
        covars: Any,
    ) -> None:
        """Update each track's predicted state at ``times`` (``means`` n × 4 × 1, ``covars``
        n × 4 × 4) by its plot, and record the step."""
        positions = [plot.geometry.positions()[0] for _, plot in batch]
        plotted = np.empty((len(batch), 2))
        by_plane: dict[tuple[int, int], list[int]] = {}
        for number, (track, _) in enumerate(batch):
            by_plane.setdefault(track.plane.point, []).append(number)
        for numbers in by_plane.values():  # the plots in each plane at once
            lons, lats = np.array([positions[number] for number in numbers]).T
            xs, ys = batch[numbers[0]][0].plane.to_km_many(lons, lats)
            plotted[numbers, 0] = xs
            plotted[numbers, 1] = ys
        noises = np.array([sigma_km(plot) ** 2 for _, plot in batch])
        # The measurement picks x and y (state rows 0 and 2): a 2×2 innovation covariance.
        cross = covars[:, :, 0::2]
        a = cross[:, 0, 0] + noises
        b = cross[:, 0, 1]
        c = cross[:, 2, 0]
        d = cross[:, 2, 1] + noises
        det = a * d - b * c
        inverse = np.stack((d / det, -b / det, -c / det, a / det), axis=1).reshape(-1, 2, 2)
        gains = cross @ inverse
        residuals = plotted - means[:, 0::2, 0]
        updated = means + gains @ residuals[:, :, None]
        posteriors = covars - gains @ cross.transpose(0, 2, 1)
        for number, ((track, plot), (lon, lat)) in enumerate(zip(batch, positions, strict=True)):
            track._time = times[number]
            track._mean = updated[number]
            track._covar = posteriors[number]
            track._steps.append(
                (track._time, means[number], covars[number], track._mean, track._covar)
            )
            track.smoother.grown()
            track.members.append(plot)
            track.summary.add(plot)
            track._lon_sum += lon
            track._lat_sum += lat

    def smoothed_arrays(self) -> Smoothed:
        """The track smoothed, as arrays (what :meth:`smoothed` gives, kept as the track grew)."""
        return self.smoother.smoothed()

    def smoothed(self) -> Track:
        """The track smoothed (Stone Soup's Kalman smoother over the filtered states)."""
        states = []
        for (moment, mean, covar, updated, posterior), plot in zip(
            self._steps, self.members, strict=True
        ):
            prediction = GaussianStatePrediction(mean, covar, timestamp=moment)
            detection = _detection(plot, self.plane)
            states.append(
                GaussianStateUpdate(
                    updated,
                    posterior,
                    hypothesis=SingleHypothesis(prediction, detection),
                    timestamp=moment,
                )
            )
        return KalmanSmoother(self._transition).smooth(Track(states))


def extend_tracks(
    updates: Sequence[tuple[FollowedTrack, Sequence[Observation]]], *, reach: bool = True
) -> None:
    """Extend source tracks, each by its plots (in order, none earlier than its last): the
    tracks' steps are taken together, the first plot of each, then the second, and so on, so a
    picture read's updates share their numpy calls; ``reach``: what their reaches take of
    their states is made now, for all of them at once (else when each is asked for)."""
    rounds = max((len(plots) for _, plots in updates), default=0)
    for number in range(rounds):
        FollowedTrack.step_all(
            [(track, plots[number]) for track, plots in updates if len(plots) > number]
        )
    if reach:
        smoothers = [track.smoother for track, _ in updates]
        RunningSmoother.reach_all(smoothers)
        RunningSmoother.bound_blocks(smoothers)
        FollowedTrack.project_all([track for track, _ in updates])


def follow_plots(
    ordered: Sequence[Observation],
) -> list[tuple[tuple[Observation, ...], TrackStates]]:
    """The updates of one source track, in (time, id) order, as one track (or, for plots at
    the very first moment, one each: as track_plots has always done)."""
    plane = _plane_of(ordered)
    first = ordered[0].observed_at
    tracks = [FollowedTrack(o, plane) for o in ordered if o.observed_at == first]
    extend_tracks([(tracks[0], ordered[len(tracks) :])], reach=False)
    if len(tracks) == 1:
        tracks[0].degrees = tracks[0].plane_with(())  # the plane is its plots' mean
    return [(tuple(t.members), TrackStates(plane, followed=t)) for t in tracks]


@functools.cache
def _transition(kind: str) -> _Transition:
    """The constant-velocity model of a kind (its matrices kept per time step)."""
    return _Filter(kind).transition


def _means_on(smoothed: Smoothed | RunningSmoother, grid: list[dt.datetime]) -> Any:
    """The means of :func:`_states_at` at each moment of ``grid`` (g × 4), at once: each state
    moved by its velocity to the moment (what the constant-velocity model predicts)."""
    times = smoothed.times
    indices = [max(bisect.bisect_right(times, moment) - 1, 0) for moment in grid]
    means = smoothed.means_of(indices)
    intervals = np.array(
        [
            (moment - times[index]).total_seconds()
            for moment, index in zip(grid, indices, strict=True)
        ]
    )
    means[:, 0] += intervals * means[:, 1]
    means[:, 2] += intervals * means[:, 3]
    return means


def _states_at(
    smoothed: Smoothed | RunningSmoother, moments: list[dt.datetime], kind: str
) -> tuple[Any, Any]:
    """Means (k × 4) and covariances of a smoothed track at ``moments``: at each, its last
    state at or before it (else its first), predicted to it by the track's own model (all in
    one product; a state at the moment itself is taken as it is, the step being the
    identity)."""
    times = smoothed.times
    indices = [max(bisect.bisect_right(times, moment) - 1, 0) for moment in moments]
    means, covars = smoothed.states_of(indices)
    matrices, noises = _transition(kind).stacked(
        tuple(moment - times[index] for moment, index in zip(moments, indices, strict=True))
    )
    predicted = (matrices @ means[:, :, None])[:, :, 0]
    return predicted, matrices @ covars @ matrices.transpose(0, 2, 1) + noises


def tracks_associated(a: Unit, b: Unit, config: GateConfig = DEFAULT_GATES) -> float | None:
    """The counting technique (as Stone Soup's ``TrackToTrackCounting`` counts) on two
    parties' kinematic tracks: cost ≤ 1, or None.

    Both tracks are sampled on a common grid over the time they share (each predicted by its
    own filter), in one plane; they are associated when their states stay within the gate for
    three consecutive steps, for at least half the shared time (all the associations counted).
    """
    if a.kind != b.kind or a.states is None or b.states is None:
        return None
    start, end = max(a.start, b.start), min(a.end, b.end)
    if end < start:
        return None
    smoothed_a, plane_a = a.states.sampled, a.states.plane
    smoothed_b, plane_b = b.states.sampled, b.states.plane
    grid: list[dt.datetime] = []
    moment = _naive(start)
    while moment <= _naive(end):
        grid.append(moment)
        moment += T2T_STEP
    if len(grid) < 3:
        return _handover(a, b, config)
    means_a = _means_on(smoothed_a, grid)
    means_b = _means_on(smoothed_b, grid)
    # b's positions moved into a's plane, so one Euclidean distance compares them.
    lons, lats = plane_b.to_lonlat_many(means_b[:, 0], means_b[:, 2])
    xs, ys = plane_a.to_km_many(lons, lats)
    across, along = means_a[:, 0] - xs, means_a[:, 2] - ys
    distances: list[float] = np.sqrt(across * across + along * along).tolist()
    threshold = max(config.sigmas * math.hypot(a.sigma_km, b.sigma_km), config.min_gate_km)
    covered = _counted(grid, distances, threshold)
    if covered is None:
        return None
    shared = (grid[-1] - grid[0]).total_seconds() or 1.0
    if covered < 0.5 * shared:
        return None  # together for a moment only: crossing, not one sortie
    return min(float(np.median(distances)) / threshold, 1.0)


CONFIRM_STEPS: Final = 3
"""Steps within the threshold in a row that start an association (the counting technique)."""
END_STEPS: Final = 2
"""Steps beyond it in a row that end one."""


def _counted(grid: list[dt.datetime], distances: list[float], threshold: float) -> float | None:
    """Seconds of the grid the counting technique finds two tracks associated over, or None
    when it finds no association: what Stone Soup's ``TrackToTrackCounting`` gives for two
    tracks sampled on one grid (``consec_pairs_confirm`` :data:`CONFIRM_STEPS`,
    ``consec_misses_end`` :data:`END_STEPS`), step for step, without its states and tracks."""
    covered = 0.0
    found = False
    successes = misses = 0
    first = start = end = None
    for moment, distance in zip(grid, distances, strict=True):
        if distance <= threshold:
            successes += 1
            misses = 0
            if successes == 1:
                first = moment
            if successes == CONFIRM_STEPS:
                start = first
        else:
            successes = 0
            misses += 1
            if misses == 1:
                end = moment
            if misses >= END_STEPS and start is not None:
                assert end is not None
                covered += (end - start).total_seconds()
                found = True
                start = None
    if start is not None:
        covered += (grid[-1] - start).total_seconds()
        found = True
    return covered if found else None


def _handover(a: Unit, b: Unit, config: GateConfig) -> float | None:
    """Tracks that barely meet in time: the earlier one, predicted by its filter to the later
    one's first plots (at most three, within the coasting time), must fall on them."""
    early, late = sorted((a, b), key=lambda unit: (unit.start, unit.key))
    if late.start - early.end > MAX_COAST:
        return None
    smoothed, plane = early.states.sampled, early.states.plane
    members = []
    for member in late.members[:3]:
        if member.observed_at - early.end > MAX_COAST:
            break
        members.append(member)
    if not members:
        return None
    moments = [_naive(member.observed_at) for member in members]
    means, covars = _states_at(smoothed, moments, early.kind)
    xs, ys = means[:, 0].tolist(), means[:, 2].tolist()
    x_variances, y_variances = covars[:, 0, 0].tolist(), covars[:, 2, 2].tolist()
    worst = 0.0
    for member, mean_x, mean_y, x_variance, y_variance in zip(
        members, xs, ys, x_variances, y_variances, strict=True
    ):
        assert isinstance(member.geometry, Point)
        x, y = _plot_km(plane, *member.geometry.coordinates)
        distance = math.hypot(mean_x - x, mean_y - y)
        spread = math.sqrt(max(x_variance, y_variance))
        limit = max(config.sigmas * math.hypot(spread, sigma_km(member)), config.min_gate_km)
        worst = max(worst, distance / limit)
    if worst > 1.0:
        return None
    return worst


@functools.lru_cache(maxsize=8192)
def _plot_km(plane: Plane, lon: float, lat: float) -> tuple[float, float]:
    """A plot in a track's plane, kept: the handover test puts the same first plots of a track
    into the plane of the track it follows at every update of either."""
    return plane.to_km(lon, lat)


def track_reach(unit: Unit, config: GateConfig = DEFAULT_GATES) -> Reach:
    """Where :func:`tracks_associated` may compare positions of ``unit``, for
    :mod:`kuroshio.fusion.reach` (whose docstring gives the argument).

    The positions compared are the smoothed states predicted by the constant-velocity model to
    moments within the track's span (a segment from each state along its velocity, to the next
    state's time) or, in the handover test, up to the other track's first three plots (at most
    :data:`COAST_REACH` past its end when that track's first three plots lie within it of its
    start; else the track is left unbounded), and the track's own plots. The gate share is
    ``sigmas × the largest of its sigma, its states' largest predicted spread and its first
    three plots' sigmas, plus half the minimum gate``: two shares add up to at least the
    counting threshold and the handover limit of any pair.

    A source track as it is now (:class:`FollowedTrack`) gives a reach holding this one, kept as
    it grows: its latest states' box and each older block's bound
    (:class:`kuroshio.fusion.smoother.RunningSmoother`), the variances of its states bounded by
    covariances that only shrink, the box turned into lon/lat :data:`REACH_SLACK_KM` wider and
    again only when it leaves that.
    """
    members = unit.members
    head = members[min(2, len(members) - 1)].observed_at - unit.start
    followed = getattr(unit.states, "followed", None)
    if followed is not None and not followed.holds(unit):
        followed = None  # a track since extended: its own states only
    if followed is not None:  # kept as the track grew
        west, south, east, north = followed.summary.bounds
    else:
        west, south, east, north = (float(v) for v in unit.shape.bounds)
    where = (unit.key, unit.origin, unit.kind, unit.start, unit.end)
    unbounded = Reach(*where, west, south, east, north, bounded=False)
    if head > COAST_REACH or unit.states is None:
        return unbounded
    if followed is not None:
        box, variance = followed.smoother.reach_box()
        projected = followed.projected(box)
    else:
        box, variance = _reach_box(unit.states.smoothed, unit.kind)
        projected = _projected(unit.states.plane, box)
    if projected is None:
        return unbounded
    (lon_low, lat_low, lon_high, lat_high), between = projected
    spread = math.sqrt(max(variance, 0.0))
    first = (
        followed.first_sigma()
        if followed is not None
        else max(sigma_km(member) for member in members[:3])
    )
    share = config.sigmas * max(unit.sigma_km, spread, first) + config.min_gate_km / 2
    return Reach(
        *where,
        min(lon_low, west),
        min(lat_low, south),
        max(lon_high, east),
        max(lat_high, north),
        between + share,
    )


def _reach_box(smoothed: Smoothed, kind: str) -> tuple[tuple[float, float, float, float], float]:
    """The box (west, south, east, north, km in the plane) of a smoothed track's states and of
    where their velocities take them by the next state (the last: by the coast), and the
    largest predicted variance of x or y over any part of those steps."""
    means, covars = smoothed.means, smoothed.covars
    steps = np.append(np.diff(smoothed.seconds), COAST_REACH.total_seconds())[:, None]
    starts = means[:, POSITION]
    corners = np.concatenate((starts, starts + means[:, VELOCITY] * steps))
    (left, low), (right, high) = corners.min(axis=0).tolist(), corners.max(axis=0).tolist()
    # The predicted variance of x (and of y) over any part of a step is at most this.
    noise = ACCELERATION_NOISE.get(kind, ACCELERATION_NOISE["sea"]) * steps**3 / 3
    variances = (
        covars[:, POSITION, POSITION]
        + 2 * steps * np.abs(covars[:, POSITION, VELOCITY])
        + steps**2 * covars[:, VELOCITY, VELOCITY]
        + noise
    )
    return (left, low, right, high), float(variances.max())


def _projected(plane: Plane, box: tuple[float, float, float, float]) -> _Projection | None:
    """A lon/lat box holding a box of the plane (west, south, east, north), and how far (km) a
    point of the plane box may lie beyond it; None when the box does not project."""
    return _projected_many(plane, [box])[0]


def _projected_many(plane: Plane, boxes: Sequence[_Box]) -> list[_Projection | None]:
    """What :func:`_projected` gives for each box, in one transform."""
    edges, betweens = [], []
    for left, low, right, high in boxes:
        # lon and lat take their extremes over the box on its edge: samples along the four sides.
        longest = max(right - left, high - low)
        samples = min(EDGE_SAMPLES, 2 + math.ceil(longest / EDGE_SPACING_KM))
        edges.append(_edge(samples) * (right - left, high - low) + (left, low))
        # Between two samples of a side, a point of the box is within half their spacing.
        betweens.append(longest / (samples - 1) / 2)
    points = np.concatenate(edges)
    lons, lats = plane.to_lonlat_many(points[:, 0], points[:, 1])
    starts = np.cumsum([0] + [len(edge) for edge in edges[:-1]])
    finite = np.logical_and.reduceat(np.isfinite(lons) & np.isfinite(lats), starts).tolist()
    wests = np.minimum.reduceat(lons, starts).tolist()
    souths = np.minimum.reduceat(lats, starts).tolist()
    easts = np.maximum.reduceat(lons, starts).tolist()
    norths = np.maximum.reduceat(lats, starts).tolist()
    return [
        ((west, south, east, north), between) if whole else None
        for west, south, east, north, between, whole in zip(
            wests, souths, easts, norths, betweens, finite, strict=True
        )
    ]
