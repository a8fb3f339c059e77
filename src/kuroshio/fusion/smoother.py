"""Rauch–Tung–Striebel smoothing of a growing source track, kept as affine maps so that an added
state costs about the same however long the track (:class:`RunningSmoother`), and a smoothed
track as arrays (:class:`Smoothed`)."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from typing import TYPE_CHECKING, Any, Final

import numpy as np

if TYPE_CHECKING:
    from stonesoup.types.track import Track

POSITION: Final = np.array([0, 2])
VELOCITY: Final = np.array([1, 3])


class Smoothed:
    """A smoothed track as arrays: naive UTC times, seconds from the first, means (n × 4: x, vx,
    y, vy in km and km/s in the track's plane) and covariances (n × 4 × 4)."""

    def __init__(self, times: list[dt.datetime], seconds: Any, means: Any, covars: Any) -> None:
        self.times = times
        self.seconds = seconds
        self.means = means
        self.covars = covars

    def state(self, index: int) -> tuple[Any, Any]:
        """State ``index``: mean (4 × 1) and covariance."""
        return self.means[index][:, None], self.covars[index]

    def means_of(self, indices: list[int]) -> Any:
        """The means of states ``indices`` (k × 4, a copy)."""
        return self.means[indices]

    @classmethod
    def of(cls, track: Track) -> Smoothed:
        """A Stone Soup track's states as arrays."""
        states = track.states
        times = [state.timestamp for state in states]
        return cls(
            times,
            np.array([(t - times[0]).total_seconds() for t in times]),
            np.array([np.asarray(s.state_vector, dtype=float).ravel() for s in states]),
            np.array([np.asarray(s.covar, dtype=float) for s in states]),
        )


class _Block:
    """Smoothed states ``first`` to ``first + size - 1`` of a growing track as affine maps of the
    smoothed state just after them (the block's pivot): means ``C + H m``, covariances
    ``D + H P Hᵀ``. Rauch–Tung–Striebel smoothing makes each state an affine function of the
    next, with coefficients fixed once that next state is filtered, so a block never changes;
    only its pivot's smoothed state does.

    For the track's reach it keeps, as of a reference pivot mean, the box of its states and of
    where their velocities take them by the next state (``box``), how far each side can move
    per unit of change of the pivot mean (``slopes``: the largest absolute coefficient of each
    side's positions, per component of the pivot), and a bound on the predicted variance over
    each step that holds from now on (a smoothed covariance only shrinks as states are added)."""

    __slots__ = (
        "box",
        "first",
        "gains",
        "offsets",
        "reference",
        "slopes",
        "spreads",
        "steps",
        "variance",
    )

    def __init__(self, first: int, offsets: Any, gains: Any, spreads: Any) -> None:
        self.first = first
        self.offsets = offsets
        self.gains = gains
        self.spreads = spreads
        self.reference: Any = None
        self.box: Any = None
        self.slopes: Any = None
        self.steps: Any = None
        self.variance = 0.0

    @property
    def size(self) -> int:
        return len(self.offsets)

    def settle(self, pivot_mean: Any, pivot_covar: Any, steps: Any, noise: float) -> None:
        """Take the reach's box and bounds with the pivot's smoothed state as it is now;
        ``steps``: seconds from each state to the next."""
        gains = self.gains
        self.steps = steps
        self.rebox(pivot_mean)
        column = steps[:, None]
        slope_x = np.maximum(np.abs(gains[:, 0]), np.abs(gains[:, 0] + column * gains[:, 1]))
        slope_y = np.maximum(np.abs(gains[:, 2]), np.abs(gains[:, 2] + column * gains[:, 3]))
        self.slopes = np.stack((slope_x.max(axis=0), slope_y.max(axis=0)))
        covars = self.spreads + gains @ pivot_covar @ gains.transpose(0, 2, 1)
        # Var(x + t·vx) ≤ (σx + t·σvx)² for t in the step: a bound that only falls as the
        # covariance shrinks (the exact 2t·|cov(x, vx)| need not).
        deviations = np.sqrt(np.maximum(np.diagonal(covars, axis1=1, axis2=2), 0.0))
        bounds = (deviations[:, POSITION] + column * deviations[:, VELOCITY]) ** 2
        self.variance = float((bounds + noise * column**3 / 3).max())

    def rebox(self, pivot_mean: Any) -> None:
        """Take the box exactly, for this pivot mean (the reference from now on)."""
        means = self.offsets + self.gains @ pivot_mean
        steps = self.steps
        xs = np.concatenate((means[:, 0], means[:, 0] + steps * means[:, 1]))
        ys = np.concatenate((means[:, 2], means[:, 2] + steps * means[:, 3]))
        self.box = np.array((xs.min(), ys.min(), xs.max(), ys.max()))
        self.reference = pivot_mean.copy()


REBOX_KM: Final = 0.25


BLOCK: Final = 16
"""A growing track's states are smoothed in blocks of this many (merged two by two as they
age), so an added state costs work on at most this many and on a few blocks."""


class RunningSmoother:
    """Rauch–Tung–Striebel smoothing of a track that grows at its end (the same recursion as
    Stone Soup's Kalman smoother), without a backward pass per state added.

    The latest states (at most :data:`BLOCK` + 1) are affine functions of the last one, mean
    ``A_k + G_k x_n``, covariance ``B_k + G_k P_n G_kᵀ``, updated in one batched product when a
    state is added; earlier ones are in :class:`_Block` s, each an affine function of its pivot,
    blocks of one size merged into one of twice the size (so a track of n states has about
    log₂ n blocks). A state is made from these maps when asked. States added wait until asked
    for, and are then taken in order: the result depends on the states only."""

    def __init__(
        self, steps: list[tuple[dt.datetime, Any, Any, Any, Any]], model: Any, noise: float
    ) -> None:
        self._steps = steps
        """The filter's steps (time, predicted mean and covariance, updated mean and covariance),
        read as the filter adds them."""
        self._model = model
        self._noise = noise
        self._times: list[dt.datetime] = []
        self._seconds: list[float] = []
        self._backward: list[tuple[Any, Any, Any]] = []
        """Offset, gain and spread of each open state on the next one (not yet in a block)."""
        self._blocks: list[_Block] = []
        self._open = 0
        """The first state not in a block."""
        self._offsets = np.zeros((0, 4))
        self._gains = np.zeros((0, 4, 4))
        self._bounds: list[float] = []
        """Per state taken (but the last), a bound on its predicted variance of x and of y over
        its step from its filtered covariance (which its smoothed one never exceeds)."""
        self._pivot_means: list[Any] | None = None
        self._pivot_covars: list[Any] | None = None
        self._open_covars: list[Any] | None = None
        self._stacked: tuple[Any, Any, Any, float] | None = None
        """The blocks' reach references, slopes, boxes (stacked) and largest variance bound,
        made again when the blocks change."""

    @property
    def times(self) -> list[dt.datetime]:
        """The states' times (naive UTC)."""
        self.catch_up()
        return self._times

    def _take(self, index: int) -> None:
        """Make state ``index - 1`` an earlier state: its gain, offsets, and every open one's."""
        earlier, _, _, last_mean, last_covar = self._steps[index - 1]
        moment, predicted_mean, predicted_covar, _, _ = self._steps[index]
        matrix, _ = self._model.at(moment - earlier)
        gain = last_covar @ matrix.T @ np.linalg.inv(predicted_covar)
        offset = (last_mean - gain @ predicted_mean).ravel()
        spread = last_covar - gain @ predicted_covar @ gain.T
        gains = self._gains
        self._offsets = np.concatenate(
            (self._offsets + (gains @ offset[:, None])[:, :, 0], offset[None])
        )
        self._gains = np.concatenate((gains @ gain, gain[None]))
        self._backward.append((offset, gain, spread))
        step = (moment - earlier).total_seconds()
        self._bounds.append(_step_bound(last_covar, step, self._noise))
        self._seconds.append(self._seconds[-1] + step)
        self._times.append(moment)
        if len(self._backward) == BLOCK:
            self._close()

    def _close(self) -> None:
        """Put the open states but the last in a block on the last (its pivot), and merge
        blocks of one size."""
        offsets, gains, spreads = [], [], []
        offset, gain, spread = self._backward[-1]
        for back_offset, back_gain, back_spread in reversed(self._backward[:-1]):
            offsets.append(offset)
            gains.append(gain)
            spreads.append(spread)
            offset = back_offset + back_gain @ offset
            spread = back_spread + back_gain @ spread @ back_gain.T
            gain = back_gain @ gain
        offsets.append(offset)
        gains.append(gain)
        spreads.append(spread)
        block = _Block(
            self._open, np.array(offsets[::-1]), np.array(gains[::-1]), np.array(spreads[::-1])
        )
        self._open += len(self._backward)
        self._backward.clear()
        self._offsets = np.zeros((0, 4))
        self._gains = np.zeros((0, 4, 4))
        _, _, _, pivot_mean, pivot_covar = self._steps[self._open]
        pivot_mean = pivot_mean.ravel()
        self._settle(block, pivot_mean, pivot_covar)
        self._blocks.append(block)
        self._stacked = None
        while len(self._blocks) > 1 and self._blocks[-2].size == self._blocks[-1].size:
            later = self._blocks.pop()
            earlier = self._blocks.pop()
            # The earlier block's pivot is the later block's first state.
            head_offset, head_gain, head_spread = later.offsets[0], later.gains[0], later.spreads[0]
            gains = earlier.gains
            merged = _Block(
                earlier.first,
                np.concatenate((earlier.offsets + gains @ head_offset, later.offsets)),
                np.concatenate((gains @ head_gain, later.gains)),
                np.concatenate(
                    (
                        earlier.spreads + gains @ head_spread @ gains.transpose(0, 2, 1),
                        later.spreads,
                    )
                ),
            )
            self._settle(merged, pivot_mean, pivot_covar)
            self._blocks.append(merged)

    def _settle(self, block: _Block, pivot_mean: Any, pivot_covar: Any) -> None:
        seconds = self._seconds[block.first : block.first + block.size + 1]
        block.settle(pivot_mean, pivot_covar, np.diff(seconds), self._noise)

    def catch_up(self) -> None:
        """Take the states the filter has added since last asked."""
        if not self._seconds:
            self._seconds.append(0.0)
            self._times.append(self._steps[0][0])
        while len(self._seconds) < len(self._steps):
            self._take(len(self._seconds))

    def _pivots(self) -> list[Any]:
        """Each block's pivot's smoothed mean (4)."""
        if self._pivot_means is None:
            mean = self._open_mean(0)
            means = []
            for block in reversed(self._blocks):
                means.append(mean)
                mean = block.offsets[0] + block.gains[0] @ mean
            self._pivot_means = means[::-1]
        return self._pivot_means

    def _pivot_covariances(self) -> list[Any]:
        """Each block's pivot's smoothed covariance (made when a covariance is asked for)."""
        if self._pivot_covars is None:
            covar = self._open_covariances()[0]
            covars = []
            for block in reversed(self._blocks):
                covars.append(covar)
                gain = block.gains[0]
                covar = block.spreads[0] + gain @ covar @ gain.T
            self._pivot_covars = covars[::-1]
        return self._pivot_covars

    def _open_mean(self, index: int) -> Any:
        """Open state ``index``'s smoothed mean (4), from the first state not in a block."""
        last_mean = self._steps[-1][3].ravel()
        if index == len(self._offsets):
            return last_mean
        return self._offsets[index] + self._gains[index] @ last_mean

    def _open_covariances(self) -> list[Any]:
        """The open states' smoothed covariances, back from the last (made when asked)."""
        if self._open_covars is None:
            covar = self._steps[-1][4]
            covars = [covar]
            for _, gain, spread in reversed(self._backward):
                covar = spread + gain @ covar @ gain.T
                covars.append(covar)
            self._open_covars = covars[::-1]
        return self._open_covars

    def _block_of(self, index: int) -> int:
        return bisect.bisect_right([block.first for block in self._blocks], index) - 1

    def mean(self, index: int) -> Any:
        """Smoothed state ``index``'s mean (4 × 1)."""
        self.catch_up()
        if index >= self._open:
            return self._open_mean(index - self._open)[:, None]
        number = self._block_of(index)
        block = self._blocks[number]
        offset = index - block.first
        return (block.offsets[offset] + block.gains[offset] @ self._pivots()[number])[:, None]

    def means_of(self, indices: list[int]) -> Any:
        """Smoothed means of states ``indices`` (k × 4), made at once for each block asked."""
        self.catch_up()
        positions = np.asarray(indices)
        found = np.empty((len(indices), 4))
        last = self._steps[-1][3].ravel()
        opened = positions >= self._open
        if opened.any():
            rows = positions[opened] - self._open
            # The last state is its own mean: offset the mean, gain nothing.
            offsets = np.concatenate((self._offsets, last[None]))
            gains = np.concatenate((self._gains, np.zeros((1, 4, 4))))
            found[opened] = offsets[rows] + gains[rows] @ last
        if not opened.all():
            numbers = np.searchsorted([b.first for b in self._blocks], positions, side="right") - 1
            for number in np.unique(numbers[~opened]).tolist():
                block = self._blocks[number]
                chosen = (numbers == number) & ~opened
                rows = positions[chosen] - block.first
                found[chosen] = block.offsets[rows] + block.gains[rows] @ self._pivots()[number]
        return found

    def state(self, index: int) -> tuple[Any, Any]:
        """Smoothed state ``index``: mean (4 × 1) and covariance."""
        mean = self.mean(index)
        if index >= self._open:
            return mean, self._open_covariances()[index - self._open]
        number = self._block_of(index)
        block = self._blocks[number]
        offset = index - block.first
        gain = block.gains[offset]
        pivot_covar = self._pivot_covariances()[number]
        return mean, block.spreads[offset] + gain @ pivot_covar @ gain.T

    def grown(self) -> None:
        """The filter has added a state: what was made of the smoothed states is stale."""
        self._pivot_means = self._pivot_covars = self._open_covars = None

    def smoothed(self) -> Smoothed:
        self.catch_up()
        means, covars = [], []
        for block, pivot_mean, pivot_covar in zip(
            self._blocks, self._pivots(), self._pivot_covariances(), strict=True
        ):
            gains = block.gains
            means.append(block.offsets + gains @ pivot_mean)
            covars.append(block.spreads + gains @ pivot_covar @ gains.transpose(0, 2, 1))
        last_mean = self._steps[-1][3]
        means += [self._offsets + (self._gains @ last_mean)[:, :, 0], last_mean.T]
        covars.append(np.array(self._open_covariances()))
        return Smoothed(
            list(self._times),
            np.array(self._seconds),
            np.concatenate(means),
            np.concatenate(covars),
        )

    def reach_box(self, coast: float) -> tuple[tuple[float, float, float, float], float]:
        """A box (west, south, east, north, km in the plane) holding every smoothed state and
        where its velocity takes it by the next state (the last: by ``coast`` seconds), and a
        bound on the predicted variance of x and of y over any part of those steps: what
        :func:`track_reach` takes of all the states, from the open ones and each block's bound
        (the open states' variances bounded by their filtered covariances, the last's exact)."""
        self.catch_up()
        _, _, _, last_mean, last_covar = self._steps[-1]
        means = np.concatenate((self._offsets + (self._gains @ last_mean)[:, :, 0], last_mean.T))
        seconds = self._seconds[self._open :]
        # As np.diff would subtract them, without its cost on a few numbers.
        steps = np.array([b - a for a, b in itertools.pairwise(seconds)] + [coast])
        starts = means[:, 0::2]
        corners = np.concatenate((starts, starts + means[:, 1::2] * steps[:, None]))
        low = corners.min(axis=0)
        high = corners.max(axis=0)
        variance = _step_variance(last_covar, coast, self._noise)
        if self._open < len(self._bounds):
            variance = max(variance, max(self._bounds[self._open :]))
        if self._blocks:
            block_low, block_high, block_variance = self._block_bounds()
            low = np.minimum(low, block_low)
            high = np.maximum(high, block_high)
            variance = max(variance, block_variance)
        (west, south), (east, north) = low.tolist(), high.tolist()
        return (west, south, east, north), variance

    def _block_bounds(self) -> tuple[Any, Any, float]:
        """West and south, east and north (km in the plane) holding every block's positions,
        and the largest of their variance bounds: each block's box at its reference moved by
        the most it can move with its pivot's mean now (all blocks in one product), or, once
        that is more than :data:`REBOX_KM`, the block's box taken again (after a turn)."""
        if self._stacked is None:
            blocks = self._blocks
            self._stacked = (
                np.array([block.reference for block in blocks]),
                np.array([block.slopes for block in blocks]),
                np.array([block.box for block in blocks]),
                max(block.variance for block in blocks),
            )
        references, slopes, boxes, variance = self._stacked
        pivots = np.array(self._pivots())
        shifts = (slopes @ np.abs(pivots - references)[:, :, None])[:, :, 0]
        moved = shifts.max(axis=1) > REBOX_KM
        if moved.any():
            for number in np.flatnonzero(moved).tolist():
                block = self._blocks[number]
                block.rebox(pivots[number])
                references[number] = block.reference
                boxes[number] = block.box
                shifts[number] = 0.0
        return (boxes[:, :2] - shifts).min(axis=0), (boxes[:, 2:] + shifts).max(axis=0), variance


def _step_variance(covar: Any, step: float, noise: float) -> float:
    """The largest predicted variance of x or y over any part of a step (as track_reach)."""
    rows: list[list[float]] = covar.tolist()
    (xx, xv, _, _), (_, vv, _, _), (_, _, yy, yv), (_, _, _, ww) = rows
    added = noise * step**3 / 3
    return max(
        xx + 2 * step * abs(xv) + step**2 * vv + added,
        yy + 2 * step * abs(yv) + step**2 * ww + added,
    )


def _step_bound(covar: Any, step: float, noise: float) -> float:
    """(σx + t·σvx)² + the noise, the larger of x and y: at least :func:`_step_variance` for
    this covariance and for any smaller one (a smoothed covariance of the same state)."""
    diagonal = [math.sqrt(max(value, 0.0)) for value in covar.diagonal().tolist()]
    added = noise * step**3 / 3
    return max(
        (diagonal[0] + step * diagonal[1]) ** 2 + added,
        (diagonal[2] + step * diagonal[3]) ** 2 + added,
    )
