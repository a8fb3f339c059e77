"""Rauch–Tung–Striebel smoothing of a growing source track, kept as affine maps so that an added
state costs about the same however long the track (:class:`RunningSmoother`), and a smoothed
track as arrays (:class:`Smoothed`)."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
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

    def states_of(self, indices: list[int]) -> tuple[Any, Any]:
        """The means (k × 4) and covariances (k × 4 × 4) of states ``indices``."""
        return self.means[indices], self.covars[indices]

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
    state is added; earlier ones are in :class:`_Block` s, each an affine function of its pivot
    (the latest states' maps when they fill a block), blocks of one size merged into one of
    twice the size (so a track of n states has about log₂ n blocks). A state is made from these
    maps when asked. Each state the filter adds is taken at once, together with the states other
    tracks' filters add at the same time (:meth:`take_all`): the result depends on the states
    only."""

    def __init__(
        self, steps: list[tuple[dt.datetime, Any, Any, Any, Any]], noise: float, coast: float
    ) -> None:
        self._steps = steps
        """The filter's steps (time, predicted mean and covariance, updated mean and covariance),
        read as the filter adds them."""
        self._noise = noise
        self._coast = coast
        """Seconds the last state's segment reaches in the reach's box (:meth:`reach_box`)."""
        self._times: list[dt.datetime] = []
        self._seconds: list[float] = []
        self._blocks: list[_Block] = []
        self._open = 0
        """The first state not in a block."""
        self._offsets = np.zeros((0, 4))
        self._gains = np.zeros((0, 4, 4))
        self._spreads = np.zeros((0, 4, 4))
        """The open states (not yet in a block) as maps of the last: mean ``offset + gain x``,
        covariance ``spread + gain P gainᵀ``."""
        self._bounds: list[float] = []
        """Per state taken (but the last), a bound on its predicted variance of x and of y over
        its step from its filtered covariance (which its smoothed one never exceeds)."""
        self._pivot_means: Any = None
        self._pivot_covars: list[Any] | None = None
        self._open_reach: tuple[Any, list[float], list[float], float] | None = None
        """The open states' smoothed means (with the last), the low and high corners (x, y) of
        their box and the last state's variance bound over the coast: made for every track at
        once as states are added (:meth:`reach_all`)."""
        self._stacked: tuple[Any, Any, Any, float] | None = None
        """The blocks' reach references, slopes, boxes (stacked) and largest variance bound,
        made again when the blocks change."""
        self._block_reach: tuple[list[float], list[float], float] | None = None
        """West and south, east and north holding the blocks' positions, and their largest
        variance bound (:meth:`bound_blocks`)."""

    @property
    def times(self) -> list[dt.datetime]:
        """The states' times (naive UTC)."""
        self.catch_up()
        return self._times

    @staticmethod
    def take_all(
        smoothers: Sequence[RunningSmoother],
        matrices: Any,
        last: tuple[Any, Any],
        predicted: tuple[Any, Any],
    ) -> None:
        """Take the state each smoother's filter has just added (its step's transition
        matrices, the last updated means and covariances and the predicted ones, stacked in the
        smoothers' order): the backward gains of all of them in one product, and every open
        state's map in one product per number of open states."""
        for smoother in smoothers:
            smoother.catch_up()
        last_means, last_covars = last
        predicted_means, predicted_covars = predicted
        gains = last_covars @ matrices.transpose(0, 2, 1) @ np.linalg.inv(predicted_covars)
        offsets = (last_means - gains @ predicted_means)[:, :, 0]
        spreads = last_covars - gains @ predicted_covars @ gains.transpose(0, 2, 1)
        steps = np.array([(s._steps[-1][0] - s._steps[-2][0]).total_seconds() for s in smoothers])
        noises = np.array([s._noise for s in smoothers])
        bounds = _step_bounds(last_covars, steps, noises).tolist()
        by_size: dict[int, list[int]] = {}
        for number, smoother in enumerate(smoothers):
            by_size.setdefault(len(smoother._offsets), []).append(number)
        for size, numbers in by_size.items():
            gain, offset = gains[numbers], offsets[numbers]
            if size:
                held_gains = np.array([smoothers[n]._gains for n in numbers])
                held_offsets = np.array([smoothers[n]._offsets for n in numbers])
                held_spreads = np.array([smoothers[n]._spreads for n in numbers])
                moved = (held_gains @ offset[:, None, :, None])[..., 0]
                new_offsets = np.concatenate((held_offsets + moved, offset[:, None]), axis=1)
                new_gains = np.concatenate((held_gains @ gain[:, None], gain[:, None]), axis=1)
                spread = spreads[numbers]
                widened = held_gains @ spread[:, None] @ held_gains.transpose(0, 1, 3, 2)
                new_spreads = np.concatenate((held_spreads + widened, spread[:, None]), axis=1)
            else:
                new_offsets, new_gains = offset[:, None], gain[:, None]
                new_spreads = spreads[numbers][:, None]
            for row, number in enumerate(numbers):
                smoother = smoothers[number]
                smoother._offsets = new_offsets[row]
                smoother._gains = new_gains[row]
                smoother._spreads = new_spreads[row]
                smoother._bounds.append(bounds[number])
                smoother._seconds.append(smoother._seconds[-1] + float(steps[number]))
                smoother._times.append(smoother._steps[-1][0])
                if len(smoother._offsets) == BLOCK:
                    smoother._close()

    @staticmethod
    def reach_all(smoothers: Sequence[RunningSmoother]) -> None:
        """Make each smoother's open states' means and box, and its last state's variance bound
        over the coast (what :meth:`reach_box` reads), one product per number of open states."""
        by_size: dict[int, list[RunningSmoother]] = {}
        for smoother in smoothers:
            by_size.setdefault(len(smoother._offsets), []).append(smoother)
        for size, group in by_size.items():
            last = np.array([smoother._steps[-1][3] for smoother in group])
            means = last.transpose(0, 2, 1)
            if size:
                held_gains = np.array([smoother._gains for smoother in group])
                held_offsets = np.array([smoother._offsets for smoother in group])
                opened = held_offsets + (held_gains @ last[:, None])[..., 0]
                means = np.concatenate((opened, means), axis=1)
            coasts = np.array([smoother._coast for smoother in group])[:, None]
            seconds = np.array([smoother._seconds[smoother._open :] for smoother in group])
            steps = np.concatenate((np.diff(seconds, axis=1), coasts), axis=1)[:, :, None]
            starts = means[:, :, 0::2]
            corners = np.concatenate((starts, starts + means[:, :, 1::2] * steps), axis=1)
            lows = corners.min(axis=1).tolist()
            highs = corners.max(axis=1).tolist()
            covars = np.array([smoother._steps[-1][4] for smoother in group])
            noises = np.array([smoother._noise for smoother in group])
            variances = _step_variances(covars, coasts[:, 0], noises).tolist()
            for number, smoother in enumerate(group):
                smoother._open_reach = (
                    means[number],
                    lows[number],
                    highs[number],
                    variances[number],
                )

    def _close(self) -> None:
        """Put the open states but the last in a block on the last (its pivot), and merge
        blocks of one size."""
        block = _Block(self._open, self._offsets, self._gains, self._spreads)
        self._open += block.size
        self._offsets = np.zeros((0, 4))
        self._gains = np.zeros((0, 4, 4))
        self._spreads = np.zeros((0, 4, 4))
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
        """Take the first state (the others are taken as they are added: :meth:`take_all`)."""
        if not self._seconds:
            self._seconds.append(0.0)
            self._times.append(self._steps[0][0])

    def _pivots(self) -> Any:
        """Each block's pivot's smoothed mean (blocks × 4)."""
        if self._pivot_means is None:
            RunningSmoother._pivots_all([self])
        return self._pivot_means

    @staticmethod
    def _pivots_all(smoothers: Sequence[RunningSmoother]) -> Any:
        """Make the pivots' means of smoothers with the same number of blocks (one product per
        block, back from the first open state's), and give them (smoothers × blocks × 4)."""
        count = len(smoothers[0]._blocks)
        if not count:
            pivots = np.zeros((len(smoothers), 0, 4))
            for smoother in smoothers:
                smoother._pivot_means = pivots[0]
            return pivots
        mean = np.array([smoother._open_means()[0] for smoother in smoothers])
        means = [mean]
        for number in range(count - 1, 0, -1):
            blocks = [smoother._blocks[number] for smoother in smoothers]
            offsets = np.array([block.offsets[0] for block in blocks])
            gains = np.array([block.gains[0] for block in blocks])
            mean = offsets + (gains @ mean[:, :, None])[:, :, 0]
            means.append(mean)
        pivots = np.stack(means[::-1], axis=1)
        for row, smoother in enumerate(smoothers):
            smoother._pivot_means = pivots[row]
        return pivots

    def _pivot_covariances(self) -> list[Any]:
        """Each block's pivot's smoothed covariance (made when a covariance is asked for)."""
        if self._pivot_covars is None:
            covar = self._open_covariance(0)
            covars = []
            for block in reversed(self._blocks):
                covars.append(covar)
                gain = block.gains[0]
                covar = block.spreads[0] + gain @ covar @ gain.T
            self._pivot_covars = covars[::-1]
        return self._pivot_covars

    def _open_means(self) -> Any:
        """The open states' smoothed means and the last one's (k × 4)."""
        if self._open_reach is None:
            self.catch_up()
            RunningSmoother.reach_all([self])
            assert self._open_reach is not None
        return self._open_reach[0]

    def _open_mean(self, index: int) -> Any:
        """Open state ``index``'s smoothed mean (4), from the first state not in a block."""
        return self._open_means()[index]

    def _open_covariance(self, index: int) -> Any:
        """Open state ``index``'s smoothed covariance, from the first state not in a block."""
        last = self._steps[-1][4]
        if index == len(self._spreads):
            return last
        gain = self._gains[index]
        return self._spreads[index] + gain @ last @ gain.T

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
        opened = positions >= self._open
        if opened.any():
            found[opened] = self._open_means()[positions[opened] - self._open]
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
            return mean, self._open_covariance(index - self._open)
        number = self._block_of(index)
        block = self._blocks[number]
        offset = index - block.first
        gain = block.gains[offset]
        pivot_covar = self._pivot_covariances()[number]
        return mean, block.spreads[offset] + gain @ pivot_covar @ gain.T

    def states_of(self, indices: list[int]) -> tuple[Any, Any]:
        """Smoothed means (k × 4) and covariances (k × 4 × 4) of states ``indices``, made at
        once for the states of each block asked."""
        self.catch_up()
        firsts = [block.first for block in self._blocks]
        by_block: dict[int, list[int]] = {}
        for row, index in enumerate(indices):
            number = len(firsts) if index >= self._open else bisect.bisect_right(firsts, index) - 1
            by_block.setdefault(number, []).append(row)
        means = np.empty((len(indices), 4))
        covars = np.empty((len(indices), 4, 4))
        for number, rows in by_block.items():
            if number == len(firsts):  # open states, on the last one
                first = self._open
                offsets, gains, spreads = self._offsets, self._gains, self._spreads
                pivot_mean, pivot_covar = self._steps[-1][3][:, 0], self._steps[-1][4]
                if any(indices[row] - first == len(offsets) for row in rows):  # the last itself
                    offsets = np.concatenate((offsets, np.zeros((1, 4))))
                    gains = np.concatenate((gains, np.eye(4)[None]))
                    spreads = np.concatenate((spreads, np.zeros((1, 4, 4))))
            else:
                block = self._blocks[number]
                first = block.first
                offsets, gains, spreads = block.offsets, block.gains, block.spreads
                pivot_mean = self._pivots()[number]
                pivot_covar = self._pivot_covariances()[number]
            chosen = [indices[row] - first for row in rows]
            gain = gains[chosen]
            means[rows] = offsets[chosen] + gain @ pivot_mean
            covars[rows] = spreads[chosen] + gain @ pivot_covar @ gain.transpose(0, 2, 1)
        return means, covars

    def grown(self) -> None:
        """The filter has added a state: what was made of the smoothed states is stale."""
        self._pivot_means = self._pivot_covars = None
        self._open_reach = self._block_reach = None

    def smoothed(self) -> Smoothed:
        self.catch_up()
        means, covars = [], []
        for block, pivot_mean, pivot_covar in zip(
            self._blocks, self._pivots(), self._pivot_covariances(), strict=True
        ):
            gains = block.gains
            means.append(block.offsets + gains @ pivot_mean)
            covars.append(block.spreads + gains @ pivot_covar @ gains.transpose(0, 2, 1))
        means.append(self._open_means())
        last = self._steps[-1][4]
        gains = self._gains
        covars += [self._spreads + gains @ last @ gains.transpose(0, 2, 1), last[None]]
        return Smoothed(
            list(self._times),
            np.array(self._seconds),
            np.concatenate(means),
            np.concatenate(covars),
        )

    def reach_box(self) -> tuple[tuple[float, float, float, float], float]:
        """A box (west, south, east, north, km in the plane) holding every smoothed state and
        where its velocity takes it by the next state (the last: by the coast), and a bound on
        the predicted variance of x and of y over any part of those steps: what
        :func:`kuroshio.fusion.kinematic.track_reach` takes of all the states, from the open
        ones and each block's bound (the open states' variances bounded by their filtered
        covariances, the last's exact)."""
        self._open_means()
        assert self._open_reach is not None
        _, (west, south), (east, north), variance = self._open_reach
        if self._open < len(self._bounds):
            variance = max(variance, *self._bounds[self._open :])
        if self._blocks:
            if self._block_reach is None:
                RunningSmoother.bound_blocks([self])
                assert self._block_reach is not None
            (block_west, block_south), (block_east, block_north), block_variance = self._block_reach
            west, south = min(west, block_west), min(south, block_south)
            east, north = max(east, block_east), max(north, block_north)
            variance = max(variance, block_variance)
        return (west, south, east, north), variance

    @staticmethod
    def bound_blocks(smoothers: Sequence[RunningSmoother]) -> None:
        """Make what :meth:`reach_box` takes of each smoother's blocks: the west and south,
        east and north holding every block's positions, and the largest of their variance
        bounds. Each block's box at its reference is moved by the most it can move with its
        pivot's mean now or, once that is more than :data:`REBOX_KM`, taken again (after a
        turn); one product for the blocks of all smoothers with as many blocks."""
        by_count: dict[int, list[RunningSmoother]] = {}
        for smoother in smoothers:
            if smoother._blocks:
                by_count.setdefault(len(smoother._blocks), []).append(smoother)
        for group in by_count.values():
            stacks = []
            for smoother in group:
                if smoother._stacked is None:
                    blocks = smoother._blocks
                    smoother._stacked = (
                        np.array([block.reference for block in blocks]),
                        np.array([block.slopes for block in blocks]),
                        np.array([block.box for block in blocks]),
                        max(block.variance for block in blocks),
                    )
                stacks.append(smoother._stacked)
            references = np.array([stack[0] for stack in stacks])
            slopes = np.array([stack[1] for stack in stacks])
            boxes = np.array([stack[2] for stack in stacks])
            pivots = RunningSmoother._pivots_all(group)
            shifts = (slopes @ np.abs(pivots - references)[..., None])[..., 0]
            moved = shifts.max(axis=2) > REBOX_KM
            if moved.any():
                for row, number in np.argwhere(moved).tolist():
                    block = group[row]._blocks[number]
                    block.rebox(pivots[row, number])
                    stacks[row][0][number] = block.reference
                    stacks[row][2][number] = block.box
                    boxes[row, number] = block.box
                    shifts[row, number] = 0.0
            lows = (boxes[:, :, :2] - shifts).min(axis=1).tolist()
            highs = (boxes[:, :, 2:] + shifts).max(axis=1).tolist()
            for row, smoother in enumerate(group):
                smoother._block_reach = (lows[row], highs[row], stacks[row][3])


def _step_variances(covars: Any, steps: Any, noises: Any) -> Any:
    """The largest predicted variance of x or y over any part of a step, for each covariance
    (as :func:`kuroshio.fusion.kinematic.track_reach` bounds it)."""
    added = noises * steps**3 / 3
    twice = 2 * steps
    squared = steps**2
    return np.maximum(
        covars[:, 0, 0] + twice * np.abs(covars[:, 0, 1]) + squared * covars[:, 1, 1] + added,
        covars[:, 2, 2] + twice * np.abs(covars[:, 2, 3]) + squared * covars[:, 3, 3] + added,
    )


def _step_bounds(covars: Any, steps: Any, noises: Any) -> Any:
    """(σx + t·σvx)² + the noise, the larger of x and y, for each covariance: at least
    :func:`_step_variances` for it and for any smaller one (a smoothed covariance of the same
    state)."""
    deviations = np.sqrt(np.maximum(np.diagonal(covars, axis1=1, axis2=2), 0.0))
    added = noises * steps**3 / 3
    return np.maximum(
        (deviations[:, 0] + steps * deviations[:, 1]) ** 2 + added,
        (deviations[:, 2] + steps * deviations[:, 3]) ** 2 + added,
    )
