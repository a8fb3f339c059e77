"""Rasters of the area zones, to spare exact point-in-area tests far from a boundary.

Each cell of a grid over an area is judged once with shapely, grown by :data:`MARGIN` on every
side: wholly outside the area, wholly inside its interior, or near its boundary. Later a
position is placed in a cell by arithmetic alone. The margin is many orders of magnitude larger
than the rounding in that arithmetic, so a position always lies inside the grown cell it is
placed in, and what was found for the grown cell holds for the position exactly. Where the
raster cannot say (near the boundary, or for coordinates that are not numbers) the caller asks
shapely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shapely

CELL: Final = 0.125
"""Side of a cell in degrees; doubled for large areas until they have at most
:data:`MAX_SIDE` cells a side. A power of two, so that cell corners are exact."""
MAX_SIDE: Final = 256
MARGIN: Final = 1e-6
"""Degrees (about 10 cm) by which a cell is grown before it is judged."""

OUTSIDE: Final = 0
INSIDE: Final = 1
NEAR: Final = 2
"""Cell states: wholly outside the area, wholly inside its interior, or too near its
boundary to say."""


@dataclass(frozen=True, slots=True)
class AreaRaster:
    """``columns`` x ``rows`` cells of side ``cell`` from (``x0``, ``y0``) to (``x1``, ``y1``),
    covering one area and a cell to spare on every side."""

    x0: float
    y0: float
    x1: float
    y1: float
    cell: float
    columns: int
    rows: int
    states: bytes
    """:data:`OUTSIDE`, :data:`INSIDE` or :data:`NEAR` for each cell, row by row from
    (``x0``, ``y0``)."""

    def state(self, x: float, y: float) -> int:
        """:data:`OUTSIDE` or :data:`INSIDE` when the position is certainly outside the area or
        in its interior, :data:`NEAR` when only an exact test can tell."""
        if self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1:
            column = math.floor((x - self.x0) / self.cell)
            row = math.floor((y - self.y0) / self.cell)
            # A position on the grid's far side belongs to the last cell.
            if column == self.columns:
                column -= 1
            if row == self.rows:
                row -= 1
            return self.states[row * self.columns + column]
        if x < self.x0 or x > self.x1 or y < self.y0 or y > self.y1:
            return OUTSIDE  # beyond the area's bounding box
        return NEAR  # not a number


def area_raster(polygon: Any) -> AreaRaster:
    """The raster of a prepared shapely polygon."""
    min_x, min_y, max_x, max_y = shapely.bounds(polygon).tolist()
    cell = CELL
    while max(max_x - min_x, max_y - min_y) > MAX_SIDE * cell:
        cell *= 2.0
    x0 = math.floor(min_x / cell) * cell - cell
    y0 = math.floor(min_y / cell) * cell - cell
    columns = math.floor((max_x - x0) / cell) + 2
    rows = math.floor((max_y - y0) / cell) + 2
    xs = x0 + np.arange(columns + 1) * cell
    ys = y0 + np.arange(rows + 1) * cell
    left, bottom = np.meshgrid(xs[:-1] - MARGIN, ys[:-1] - MARGIN)
    right, top = np.meshgrid(xs[1:] + MARGIN, ys[1:] + MARGIN)
    cells = shapely.box(left.ravel(), bottom.ravel(), right.ravel(), top.ravel())
    states = np.full(len(cells), NEAR, dtype=np.uint8)
    states[shapely.disjoint(polygon, cells)] = OUTSIDE
    states[shapely.contains_properly(polygon, cells)] = INSIDE
    return AreaRaster(
        x0=x0,
        y0=y0,
        x1=x0 + columns * cell,
        y1=y0 + rows * cell,
        cell=cell,
        columns=columns,
        rows=rows,
        states=states.tobytes(),
    )
