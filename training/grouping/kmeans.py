"""Mini-batch K-means over pixel embeddings, and Hungarian matching of groups to classes.

Memory is bounded: centres are seeded (k-means++) from a fixed-size reservoir sample of pixels,
then refined by streaming one image's sampled pixels at a time (Sculley's mini-batch update with
a per-centre learning rate of 1 / pixels seen).
"""

from __future__ import annotations

import numpy as np


class Reservoir:
    """A uniform random sample of at most ``capacity`` rows from a stream (float32 [N, E])."""

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.rows: np.ndarray | None = None
        self.seen = 0

    def add(self, rows: np.ndarray) -> None:
        for row in rows:
            self.seen += 1
            if self.rows is None:
                self.rows = np.empty((self.capacity, len(row)), np.float32)
            if self.seen <= self.capacity:
                self.rows[self.seen - 1] = row
            else:
                slot = int(self.rng.integers(0, self.seen))
                if slot < self.capacity:
                    self.rows[slot] = row

    def sample(self) -> np.ndarray:
        if self.rows is None:
            return np.empty((0, 0), np.float32)
        return self.rows[: min(self.seen, self.capacity)]


def nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """int64 [N]: index of the closest of ``centres`` [K, E] for each of ``points`` [N, E]."""
    distance = (centres**2).sum(1)[None, :] - 2 * points @ centres.T
    return np.argmin(distance, axis=1)


def kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [k, E] seeds chosen by k-means++ from ``points`` float32 [N, E] (N >= k)."""
    if len(points) < k:
        raise ValueError(f"need at least {k} pixels to seed {k} groups, got {len(points)}")
    centres = [points[int(rng.integers(len(points)))]]
    closest = ((points - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = closest.sum()
        pick = int(rng.choice(len(points), p=closest / total)) if total > 0 else 0
        centres.append(points[pick])
        closest = np.minimum(closest, ((points - points[pick]) ** 2).sum(1))
    return np.stack(centres).astype(np.float32)


def refine_on_sample(centres: np.ndarray, points: np.ndarray, iterations: int = 10) -> np.ndarray:
    """A few Lloyd iterations of ``centres`` [K, E] on ``points`` [N, E]; empty centres stay."""
    centres = centres.copy()
    for _ in range(iterations):
        owner = nearest(points, centres)
        for c in range(len(centres)):
            members = points[owner == c]
            if len(members):
                centres[c] = members.mean(0)
    return centres


class MiniBatchKMeans:
    """Streaming K-means: ``update(batch)`` with float32 [N, E] rows moves the centres."""

    def __init__(self, centres: np.ndarray) -> None:
        self.centres = centres.astype(np.float32).copy()
        self.counts = np.zeros(len(centres), np.int64)

    def update(self, batch: np.ndarray) -> None:
        owner = nearest(batch, self.centres)
        for c in np.unique(owner):
            members = batch[owner == c]
            self.counts[c] += len(members)
            rate = len(members) / self.counts[c]
            self.centres[c] += rate * (members.mean(0) - self.centres[c])


def overlap_matrix(truth: np.ndarray, groups: np.ndarray, classes: int, k: int) -> np.ndarray:
    """int64 [classes, k] pixel counts; ``truth`` ints in 0..classes-1 (others ignored),
    ``groups`` ints in 0..k-1 (others ignored), same shape."""
    valid = (truth >= 0) & (truth < classes) & (groups >= 0) & (groups < k)
    flat = truth[valid].astype(np.int64) * k + groups[valid].astype(np.int64)
    return np.bincount(flat, minlength=classes * k).reshape(classes, k)


def hungarian_match(overlap: np.ndarray) -> dict[int, int]:
    """group index -> class index maximising total IoU (``overlap`` [classes, k] counts)."""
    from scipy.optimize import linear_sum_assignment

    union = overlap.sum(1, keepdims=True) + overlap.sum(0, keepdims=True) - overlap
    iou = overlap / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(-iou)
    return {int(g): int(c) for c, g in zip(rows, cols, strict=True) if overlap[c, g] > 0}


def matched_miou(overlap: np.ndarray) -> tuple[float, list[float]]:
    """Hungarian-matched mIoU of groups against truth classes (``overlap`` [classes, k]):
    each class gets at most one group; unmatched classes that occur score 0. Returns
    (mIoU over classes that occur, per-class IoU)."""
    match = hungarian_match(overlap)
    by_class = {c: g for g, c in match.items()}
    ious = []
    for c in range(overlap.shape[0]):
        if overlap[c].sum() == 0:
            continue
        g = by_class.get(c)
        if g is None:
            ious.append(0.0)
            continue
        union = overlap[c].sum() + overlap[:, g].sum() - overlap[c, g]
        ious.append(float(overlap[c, g] / union))
    return (float(np.mean(ious)) if ious else 0.0), ious
