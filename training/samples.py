"""Turning label maps (human or pseudo) into class-balanced per-pixel training samples."""

from __future__ import annotations

import numpy as np

from training.fit import SampleSet
from training.head import grid_extent, sample_clip_features
from training.views import PixelView


def balanced_pixels(
    targets: np.ndarray, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``per_class`` random pixels of every target value >= 0 in ``targets`` int [h, w].

    Returns (ys, xs) int64 arrays [N]; pixels with a negative target are never chosen.
    """
    flat = targets.ravel()
    chosen = []
    for value in np.unique(flat[flat >= 0]):
        where = np.flatnonzero(flat == value)
        if where.size > per_class:
            where = rng.choice(where, per_class, replace=False)
        chosen.append(where)
    if not chosen:
        empty = np.zeros(0, np.int64)
        return empty, empty
    index = np.concatenate(chosen)
    return np.unravel_index(index, targets.shape)


def samples_from_targets(
    view: PixelView,
    filters: np.ndarray,
    targets: np.ndarray,
    per_class: int,
    weight: float,
    rng: np.random.Generator,
    use_clip: bool,
) -> SampleSet:
    """Training samples of one image.

    ``filters`` float32 [Ff, h, w] are the view's filter features; ``targets`` int64 [h, w] hold
    the head's class index per pixel, -1 where there is no target. The CLIP part is sampled from
    ``view.features`` when ``use_clip`` (else None).
    """
    ys, xs = balanced_pixels(targets, per_class, rng)
    clip = None
    if use_clip and view.features is not None:
        extent = grid_extent(view.features.shape[1:], view.size, view.patch_size)
        clip = sample_clip_features(view.features, ys, xs, extent)
    return SampleSet(
        filters=np.ascontiguousarray(filters[:, ys, xs].T),
        clip=clip,
        labels=targets[ys, xs].astype(np.int64),
        weights=np.full(ys.shape, weight, np.float32),
    )


def targets_from_labels(labels: np.ndarray, class_to_index: dict[int, int]) -> np.ndarray:
    """Label map [h, w] of project class ids -> int64 [h, w] head indices (-1 = no target)."""
    lut_size = int(labels.max()) + 1 if labels.size else 1
    lut = np.full(lut_size, -1, np.int64)
    for class_id, index in class_to_index.items():
        if class_id < lut_size:
            lut[class_id] = index
    return lut[labels]


def select_pseudo_labels(
    probabilities: np.ndarray, top_fraction: float, min_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Confident pixels of a prediction as pseudo-labels (ZS3Net / CaGNet "+ST").

    ``probabilities`` float32 [C, h, w]. Each pixel's class is its argmax; per class, a pixel is
    kept only if its confidence is at least that class's threshold
    ``max(min_confidence, quantile(confidences of the class, 1 - top_fraction))``.
    Returns (targets int64 [h, w] class index or -1, thresholds float32 [C]; inf for classes
    that no pixel predicts).
    """
    predicted = probabilities.argmax(axis=0)
    confidence = probabilities.max(axis=0)
    targets = np.full(predicted.shape, -1, np.int64)
    thresholds = np.full(probabilities.shape[0], np.inf, np.float32)
    for index in np.unique(predicted):
        mask = predicted == index
        quantile = float(np.quantile(confidence[mask], 1.0 - top_fraction))
        thresholds[index] = max(min_confidence, quantile)
        targets[mask & (confidence >= thresholds[index])] = index
    return targets, thresholds
