"""How confident the class memory may be: a temperature fitted on the human labels.

The memory scores a pixel by cosines with the remembered classes, times the engine's logit scale
(40: a scale made for CLIP's image-text cosines, which differ by a few hundredths between
classes). Image-image cosines differ far more (a pixel of a labelled image is often the very
feature its class row averages: cosine 1 against -1), so that scale turned every memory score
into "100 %", whatever share of such pixels the labels really gave that class.

The fix is temperature scaling (Guo et al., 2017) fitted on what the memory learns from: the
labelled pixels of each image. The fitted scale ``s``
minimises the cross-entropy of ``softmax(s * cosines)`` over the remembered classes; its log is
averaged over the images learned (weighted by labelled pixels). The fit is pixel by pixel at
the working resolution, on the cosines upsampled as proposals upsample them. When the memory already knows
two or more of an image's classes the fit uses the image before the memory learns it (scores on
unseen data); the first image is fitted after (there is nothing else). The adapter then divides
its logits by one temperature, so every pixel keeps its class (argmax) and only the confidence
changes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_LOW, _ITERATIONS = 0.05, 40
#: Working pixels sampled per image for the fit (a regular grid).
_SAMPLES = 20_000


def memory_cosines(
    features: np.ndarray, rows: np.ndarray, centre: np.ndarray, logit_scale: float, layout: Any
) -> np.ndarray:
    """The memory's cosines float32 ``[S, h, w]`` at the working resolution of ``layout`` for
    ``features`` ``[D, gh, gw]`` and ``rows`` ``[S, D]`` (centre ``[D]``), upsampled as
    proposals upsample them."""
    import torch

    from annotator.engine.memory import _memory_scores, _upsample

    with torch.inference_mode():
        pixels = torch.from_numpy(np.ascontiguousarray(features, np.float32))
        scores = _memory_scores(pixels, torch.from_numpy(rows), torch.from_numpy(centre),
                                logit_scale)  # fmt: skip
        return _upsample(scores, layout.working, layout.patch).numpy()


def _working_labels(labels: np.ndarray, layout: Any, samples: int = _SAMPLES) -> tuple:
    """(rows, cols, labels) of a regular sample of working pixels: each working pixel takes the
    label of the original pixel under its centre (the inverse of the engine's resize)."""
    (height, width), (h, w) = labels.shape, layout.working
    step = max(1, math.ceil(math.sqrt(h * w / samples)))
    rows, cols = np.arange(0, h, step), np.arange(0, w, step)
    source_rows = np.minimum(((rows + 0.5) * height / h).astype(np.int64), height - 1)
    source_cols = np.minimum(((cols + 0.5) * width / w).astype(np.int64), width - 1)
    return rows, cols, labels[np.ix_(source_rows, source_cols)]


def fit_scale(cosines: np.ndarray, targets: np.ndarray, high: float) -> float | None:
    """The scale ``s`` in ``[0.05, high]`` minimising the cross-entropy of
    ``softmax(s * cosines)`` (``[S, P]``) against ``targets`` ``[S, P]`` (labelled pixels per
    class and patch, not normalised). None when the labels cannot tell (one class, no pixels)."""
    weight = targets.sum(axis=0)
    keep = weight > 0
    if targets.shape[0] < 2 or not keep.any():
        return None
    c, q = cosines[:, keep].astype(np.float64), targets[:, keep].astype(np.float64)
    if np.count_nonzero(q.sum(axis=1)) < 2:
        return None  # one class labelled: every scale explains it equally
    observed = float((q * c).sum())

    def slope(scale: float) -> float:  # d(cross-entropy)/ds: increasing in s (convex loss)
        logits = scale * c
        p = np.exp(logits - logits.max(axis=0))
        p /= p.sum(axis=0)
        return float((weight[keep] * (p * c).sum(axis=0)).sum()) - observed

    if slope(high) <= 0:
        return high
    low, top = math.log(_LOW), math.log(high)
    if slope(_LOW) >= 0:
        return _LOW
    for _ in range(_ITERATIONS):
        middle = (low + top) / 2
        low, top = (middle, top) if slope(math.exp(middle)) < 0 else (low, middle)
    return math.exp((low + top) / 2)


def image_scale(
    memory: Any, features: np.ndarray, labels: np.ndarray, layout: Any, unlabeled: int,
    logit_scale: float,
) -> float | None:  # fmt: skip
    """The scale :func:`fit_scale` finds on one image for ``memory`` as it is now, pixel by
    pixel (what a proposal's confidence is about): ``features`` ``[D, gh, gw]`` (the engine's,
    of ``layout``), ``labels`` ``[H, W]`` class ids at the original size."""
    known = sorted(memory.rows)
    if len(known) < 2 or memory.centre is None:
        return None
    rows = np.stack([memory.rows[i] for i in known]).astype(np.float32)
    centre = np.vstack([rows, memory.centre[None]]).mean(axis=0)
    at_rows, at_cols, sampled = _working_labels(labels, layout)
    targets = np.stack([sampled == class_id for class_id in known]).reshape(len(known), -1)
    if not targets.any() or unlabeled in known:
        return None
    cosines = memory_cosines(features, rows, centre, logit_scale, layout)
    picked = cosines[:, at_rows][:, :, at_cols].reshape(len(known), -1)
    return fit_scale(picked, targets.astype(np.float64), logit_scale)
