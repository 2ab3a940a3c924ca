"""Pure numpy tool logic for the canvas: brush strokes, polygons, flood fills, region picking.

No Qt here, so every tool's effect is unit-tested without a window. Label maps are ``[H, W]``
``uint8`` or ``uint16`` arrays of class ids in image pixel coordinates (x to the right, y down);
the "unlabeled" value is the dtype's maximum (255 or 65535). Points are ``(x, y)`` floats in image
pixels. Functions that change a map return the :class:`Rect` they may have changed (or ``None``),
so the canvas repaints only that rectangle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Rect:
    """A half-open pixel rectangle ``[x0, x1) x [y0, y1)`` in image coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices, for ``array[rect.slices]``."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def union(self, other: Rect | None) -> Rect:
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return Rect(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )

    def clip(self, width: int, height: int) -> Rect:
        return Rect(max(self.x0, 0), max(self.y0, 0), min(self.x1, width), min(self.y1, height))


def unlabeled_value(dtype: np.dtype) -> int:
    """The "not labelled" pixel value of a label map dtype (255 for uint8, 65535 for uint16)."""
    return int(np.iinfo(dtype).max)


def label_dtype_for(max_class_id: int) -> np.dtype:
    """uint8 while every class id stays below 255, else uint16."""
    return np.dtype(np.uint8) if max_class_id < 255 else np.dtype(np.uint16)


def empty_labels(height: int, width: int, dtype: type | np.dtype = np.uint8) -> np.ndarray:
    return np.full((height, width), unlabeled_value(np.dtype(dtype)), dtype=dtype)


def stroke_mask(
    p0: tuple[float, float], p1: tuple[float, float], radius: float, width: int, height: int
) -> tuple[Rect, np.ndarray] | None:
    """The pixels a round brush of ``radius`` covers moving from ``p0`` to ``p1``.

    Returns ``(rect, mask)`` with ``mask`` a ``bool`` array of the rect's shape, or ``None`` when
    the stroke lies entirely outside the ``width x height`` image.
    """
    r = max(0.5, float(radius))
    pad = int(np.ceil(r)) + 1
    xs, ys = (p0[0], p1[0]), (p0[1], p1[1])
    rect = Rect(
        int(np.floor(min(xs))) - pad,
        int(np.floor(min(ys))) - pad,
        int(np.ceil(max(xs))) + pad + 1,
        int(np.ceil(max(ys))) + pad + 1,
    ).clip(width, height)
    if rect.empty:
        return None
    mask = np.zeros((rect.y1 - rect.y0, rect.x1 - rect.x0), np.uint8)
    shift = 4  # sub-pixel precision of cv2 drawing: coordinates are scaled by 2**shift
    scale = 1 << shift

    def local(p: tuple[float, float]) -> tuple[int, int]:
        # cv2 puts pixel centres at integer coordinates; ours are at +0.5.
        return (round((p[0] - 0.5 - rect.x0) * scale), round((p[1] - 0.5 - rect.y0) * scale))

    a, b = local(p0), local(p1)
    cv2.circle(mask, a, round(r * scale), 1, -1, cv2.LINE_8, shift)
    cv2.circle(mask, b, round(r * scale), 1, -1, cv2.LINE_8, shift)
    if a != b:
        thickness = max(1, round(2 * r))
        cv2.line(mask, (a[0] >> shift, a[1] >> shift), (b[0] >> shift, b[1] >> shift), 1, thickness)
    return rect, mask.astype(bool)


def polygon_mask(
    points: Sequence[tuple[float, float]], width: int, height: int
) -> tuple[Rect, np.ndarray] | None:
    """Pixels inside the closed polygon ``points`` (image coordinates), as ``(rect, bool mask)``.

    ``None`` when the polygon has fewer than 3 points or lies outside the image.
    """
    if len(points) < 3:
        return None
    pts = np.asarray(points, dtype=np.float64)
    rect = Rect(
        int(np.floor(pts[:, 0].min())),
        int(np.floor(pts[:, 1].min())),
        int(np.ceil(pts[:, 0].max())) + 1,
        int(np.ceil(pts[:, 1].max())) + 1,
    ).clip(width, height)
    if rect.empty:
        return None
    mask = np.zeros((rect.y1 - rect.y0, rect.x1 - rect.x0), np.uint8)
    shift = 4
    local = np.round((pts - 0.5 - [rect.x0, rect.y0]) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, [local], 1, cv2.LINE_8, shift)
    return rect, mask.astype(bool)


def _bounding_rect(mask: np.ndarray) -> Rect | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return Rect(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _crop(mask: np.ndarray) -> tuple[Rect, np.ndarray] | None:
    rect = _bounding_rect(mask)
    if rect is None:
        return None
    return rect, mask[rect.slices]


def connected_region(values: np.ndarray, x: int, y: int) -> tuple[Rect, np.ndarray] | None:
    """The 4-connected component of pixels equal to ``values[y, x]`` containing ``(x, y)``.

    ``values`` is any 2-D integer map (labels or a proposal). Returns ``(rect, bool mask)`` cropped
    to the component's bounding box, or ``None`` when ``(x, y)`` is outside the map.
    """
    height, width = values.shape
    if not (0 <= x < width and 0 <= y < height):
        return None
    same = (values == values[y, x]).view(np.uint8)
    return _fill_from(same, x, y)


def _fill_from(allowed: np.ndarray, x: int, y: int) -> tuple[Rect, np.ndarray] | None:
    """Flood fill over the ``uint8`` 0/1 ``allowed`` map from ``(x, y)``; cropped component mask."""
    height, width = allowed.shape
    flood = np.zeros((height + 2, width + 2), np.uint8)
    # Fill the border of the flood mask so cv2 only walks where ``allowed`` is 1.
    flood[1:-1, 1:-1] = 1 - allowed
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (2 << 8)
    cv2.floodFill(allowed.copy(), flood, (x, y), 1, 0, 0, flags)
    return _crop(flood[1:-1, 1:-1] == 2)


def similar_colour_region(
    image: np.ndarray, x: int, y: int, tolerance: int = 16
) -> tuple[Rect, np.ndarray] | None:
    """Magic wand: the 4-connected region around ``(x, y)`` whose colour stays within
    ``tolerance`` (per channel, 0..255) of the seed pixel. ``image`` is ``HxWx3 uint8``."""
    height, width = image.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        return None
    flood = np.zeros((height + 2, width + 2), np.uint8)
    diff = (tolerance,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    # cv2 takes the image as an in/out argument even with FLOODFILL_MASK_ONLY: give it a copy.
    cv2.floodFill(np.array(image, order="C"), flood, (x, y), 0, diff, diff, flags)
    return _crop(flood[1:-1, 1:-1] == 1)


def outline(mask: np.ndarray) -> np.ndarray:
    """``bool`` map of the pixels on the border of each region of an integer ``[h, w]`` map."""
    edge = np.zeros(mask.shape, bool)
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:-1, :] |= mask[:-1, :] != mask[1:, :]
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    return edge
