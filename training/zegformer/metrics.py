"""How well predicted segments match human segments: mean best-match IoU."""

from __future__ import annotations

import numpy as np


def best_match_ious(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each human segment (each value >= 0 of ``truth`` ``[h, w]``; -1 = unlabelled), the
    best IoU over the predicted segments (``predicted`` ``[h, w]`` int, 0..N-1) -> float ``[G]``.
    Unlabelled pixels count for neither side."""
    valid = truth >= 0
    pred = predicted[valid].astype(np.int64)
    true = truth[valid].astype(np.int64)
    if true.size == 0:
        return np.zeros(0)
    segments, true = np.unique(true, return_inverse=True)
    count_p = int(pred.max()) + 1
    joint = np.bincount(true * count_p + pred, minlength=len(segments) * count_p)
    joint = joint.reshape(len(segments), count_p).astype(np.float64)
    union = joint.sum(1, keepdims=True) + joint.sum(0, keepdims=True) - joint
    return (joint / np.maximum(union, 1)).max(axis=1)


def mean_best_match_iou(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """Mean over every human segment of every ``(predicted, truth)`` pair (None when none)."""
    values = [best_match_ious(p, t) for p, t in pairs]
    flat = np.concatenate(values) if values else np.zeros(0)
    return float(flat.mean()) if flat.size else None
