"""Display-side numpy helpers (no Qt): the image pyramid and overlay colouring of one tile.

The canvas shows a 12000 x 9000 image without ever converting it whole: it draws ``TILE x TILE``
blocks at the pyramid level that matches the zoom, and colours only the label blocks on screen.
Level ``k`` holds the image downscaled by ``2**k``; overlays are sampled with stride ``2**k``
(nearest neighbour, so class ids never blend).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import cv2
import numpy as np

from annotator.gui._labelops import Rect, outline, unlabeled_value

#: Pyramid levels stop once the image's longer side fits in this many pixels.
PYRAMID_MIN_SIDE = 1024
LABEL_ALPHA = 255
PROPOSAL_ALPHA = 120


def build_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """``[image, image/2, image/4, ...]`` (``HxWx3 uint8``), halving until it fits on a screen."""
    levels = [image]
    while max(levels[-1].shape[:2]) > PYRAMID_MIN_SIDE:
        previous = levels[-1]
        size = (max(1, previous.shape[1] // 2), max(1, previous.shape[0] // 2))
        levels.append(cv2.resize(previous, size, interpolation=cv2.INTER_AREA))
    return levels


def image_tile(pyramid: list[np.ndarray], level: int, rect: Rect) -> np.ndarray:
    """Pixels of ``rect`` (in level-``level`` pixel coordinates) as a contiguous ``hxwx3`` array."""
    return np.ascontiguousarray(pyramid[level][rect.slices])


def make_lut(
    colors: Mapping[int, tuple[int, int, int]],
    hidden: Iterable[int],
    dtype: np.dtype,
    alpha: int,
) -> np.ndarray:
    """``[N, 4] uint8`` RGBA lookup from class id; unlabeled and hidden classes transparent."""
    size = unlabeled_value(np.dtype(dtype)) + 1
    lut = np.zeros((size, 4), np.uint8)
    hidden = set(hidden)
    for class_id, color in colors.items():
        if 0 <= class_id < size - 1 and class_id not in hidden:
            lut[class_id] = (*color, alpha)
    return lut


def _sample(values: np.ndarray, rect: Rect, step: int) -> np.ndarray:
    """Nearest-neighbour samples of ``values`` over level-pixel ``rect`` at stride ``step``."""
    return values[rect.y0 * step : rect.y1 * step : step, rect.x0 * step : rect.x1 * step : step]


def overlay_tile(
    labels: np.ndarray | None,
    proposal: np.ndarray | None,
    rect: Rect,
    step: int,
    label_lut: np.ndarray,
    proposal_lut: np.ndarray,
    outline_only: bool = False,
) -> np.ndarray | None:
    """RGBA ``[h, w, 4] uint8`` overlay for level-pixel ``rect`` at stride ``step``.

    Human labels are opaque; proposals show, fainter, only where no human label is. ``None`` when
    there is nothing to draw.
    """
    if proposal is not None and labels is not None and proposal.shape != labels.shape:
        proposal = None  # belongs to another image (a late result): never draw it here
    lab = None if labels is None else _sample(labels, rect, step)
    prop = None if proposal is None else _sample(proposal, rect, step)
    coloured = None if lab is None else np.take(label_lut, lab, axis=0)
    if coloured is not None and outline_only:
        coloured[~outline(lab), 3] = 0
    if prop is None:
        return coloured  # unlabeled pixels are transparent in the lookup table already
    proposed = np.take(proposal_lut, prop, axis=0)
    if outline_only:
        proposed[~outline(prop), 3] = 0
    if coloured is None:
        return proposed
    labelled = (lab != unlabeled_value(lab.dtype))[..., None]
    return np.where(labelled, coloured, proposed)
