"""Object-mask proposals without a saliency network.

MaskContrast needs, per image, a few masks that each cover one object or region. Here they come
from the image itself: recursive foreground/background splits (2-means) of its standardised
per-pixel features, a majority filter that cleans the boundaries, then connected parts. Because
the features are computed at pixel resolution (colour, gradients, texture), the split lines follow
the image's edges. Human segments, once an image has labels, replace the proposals they cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NO_MASK = 255


@dataclass(frozen=True)
class ProposalSettings:
    """``depth``: rounds of splitting (at most 2**depth parts); ``min_fraction``: smallest part
    (of the image) that is split or kept as a mask; ``min_separation``: how far apart (in
    within-part standard deviations) two halves must be for a split to count."""

    depth: int = 3
    min_fraction: float = 0.02
    min_separation: float = 3.0
    smooth: int = 5
    edge_margin: int = 3


@dataclass
class MaskProposals:
    """``masks`` uint8 [h, w]: mask index per pixel (0..count-1), 255 = in no mask;
    ``foreground`` bool [h, w]: the side of the first split that touches the border least."""

    masks: np.ndarray
    foreground: np.ndarray

    @property
    def count(self) -> int:
        present = np.unique(self.masks)
        return int((present != NO_MASK).sum())


def _standardise(features: np.ndarray) -> np.ndarray:
    """float32 [F, h, w] -> float32 [h*w, F], each channel zero-mean unit-variance."""
    flat = features.reshape(features.shape[0], -1).T
    return (flat - flat.mean(0)) / (flat.std(0) + 1e-6)


def _principal_axis(points: np.ndarray, iterations: int = 20) -> np.ndarray:
    """float32 [F]: the direction of largest variance of ``points`` [N, F] (power iteration on
    the small F x F covariance; a full SVD is far slower on a busy machine)."""
    covariance = points.T @ points
    axis = np.ones(points.shape[1], np.float32) / np.sqrt(points.shape[1])
    for _ in range(iterations):
        axis = covariance @ axis
        axis /= np.linalg.norm(axis) + 1e-12
    return axis


def _two_means(points: np.ndarray, iterations: int = 8) -> tuple[np.ndarray, float]:
    """Split ``points`` float32 [N, F] in two; (bool [N] side, separation in std units)."""
    centred = points - points.mean(0)
    side = centred @ _principal_axis(centred[:: max(1, len(points) // 2000)]) > 0
    for _ in range(iterations):
        if side.all() or not side.any():
            return side, 0.0
        a, b = points[side].mean(0), points[~side].mean(0)
        side = ((points - a) ** 2).sum(1) < ((points - b) ** 2).sum(1)
    if side.all() or not side.any():
        return side, 0.0
    a, b = points[side].mean(0), points[~side].mean(0)
    direction = (a - b) / (np.linalg.norm(a - b) + 1e-6)
    along = points @ direction  # Fisher-style: the gap along the split axis
    spread = np.sqrt(0.5 * (along[side].var() + along[~side].var()))
    return side, float(abs(along[side].mean() - along[~side].mean()) / (spread + 1e-6))


def _split(points: np.ndarray, settings: ProposalSettings) -> tuple[np.ndarray, np.ndarray]:
    """(int32 [N] part index from recursive splits, bool [N] side of the first split)."""
    parts = np.zeros(len(points), np.int32)
    first = np.zeros(len(points), bool)
    smallest = settings.min_fraction * len(points)
    for level in range(settings.depth):
        for part in np.unique(parts):
            index = np.flatnonzero(parts == part)
            if len(index) < 2 * smallest:
                continue
            side, separation = _two_means(points[index])
            if separation < settings.min_separation or min(side.sum(), (~side).sum()) < smallest:
                continue
            parts[index[side]] = parts.max() + 1
            if level == 0:
                first[index[side]] = True
    return parts, first


def majority_filter(labels: np.ndarray, size: int) -> np.ndarray:
    """int [h, w] -> int32 [h, w]: each pixel takes the commonest label in a size x size box."""
    values = np.unique(labels)
    if size <= 1 or len(values) < 2:
        return labels.astype(np.int32)
    votes = np.stack([cv2.blur((labels == v).astype(np.float32), (size, size)) for v in values])
    return values[np.argmax(votes, axis=0)].astype(np.int32)


def _border_share(mask: np.ndarray) -> float:
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return float(border.mean())


def _connected_masks(parts: np.ndarray, min_area: float) -> np.ndarray:
    """int [h, w] part map -> uint8 [h, w] mask index of its connected parts >= ``min_area``."""
    masks = np.full(parts.shape, NO_MASK, np.uint8)
    count = 0
    for part in np.unique(parts):
        n, components, stats, _ = cv2.connectedComponentsWithStats(
            (parts == part).astype(np.uint8), connectivity=4
        )
        for c in range(1, n):
            if stats[c, cv2.CC_STAT_AREA] >= min_area and count < NO_MASK:
                masks[components == c] = count
                count += 1
    return masks


def snap_to_edges(image: np.ndarray, parts: np.ndarray, margin: int) -> np.ndarray:
    """Re-grow ``parts`` (int [h, w]) from their cores along the edges of ``image`` (uint8
    [h, w, 3]): each part is eroded by ``margin`` pixels (smoothed features blur a band around
    every edge), then a watershed on the image decides the band. Returns int32 [h, w]."""
    markers = np.zeros(parts.shape, np.int32)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    values = np.unique(parts)
    for n, value in enumerate(values, 1):
        core = cv2.erode((parts == value).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
        markers[core > 0] = n
    if not markers.any():
        return parts.astype(np.int32)
    cv2.watershed(np.ascontiguousarray(image), markers)
    lines = markers <= 0
    grown = cv2.dilate(np.where(lines, 0, markers).astype(np.float32), np.ones((3, 3), np.uint8))
    markers[lines] = grown[lines].astype(np.int32)
    markers[markers <= 0] = 1
    return values[markers - 1].astype(np.int32)


def propose_masks(
    features: np.ndarray, image: np.ndarray, settings: ProposalSettings = ProposalSettings()
) -> MaskProposals:
    """Mask proposals of one image from its features float32 [F, h, w] (pixel grid) and the
    image itself (uint8 [h, w, 3]) whose edges the masks snap to."""
    height, width = features.shape[1:]
    parts, first = _split(_standardise(features), settings)
    parts = majority_filter(parts.reshape(height, width), settings.smooth)
    parts = snap_to_edges(image, parts, settings.edge_margin)
    foreground = np.isin(parts, np.unique(parts[first.reshape(height, width)]))
    if _border_share(foreground) > _border_share(~foreground):
        foreground = ~foreground
    masks = _connected_masks(parts, settings.min_fraction * height * width)
    return MaskProposals(masks, foreground)


def add_human_segments(
    proposals: MaskProposals, labels: np.ndarray, unlabeled: int, min_area: int = 16
) -> MaskProposals:
    """Human segments join the proposals: each connected part of one class in ``labels``
    (int [h, w] class ids at the proposals' size, ``unlabeled`` = none) becomes a mask and
    replaces the proposals under it."""
    human = np.where(labels == unlabeled, -1, labels.astype(np.int64))
    segments = _connected_masks(np.where(human < 0, -1, human), min_area)
    segments[human < 0] = NO_MASK
    keep = proposals.masks.copy()
    keep[labels != unlabeled] = NO_MASK
    offset = int(segments[segments != NO_MASK].astype(np.int64).max(initial=-1)) + 1
    merged = segments.copy()
    auto = keep != NO_MASK
    merged[auto] = np.minimum(keep[auto].astype(np.int32) + offset, NO_MASK - 1).astype(np.uint8)
    return MaskProposals(merged, proposals.foreground)
