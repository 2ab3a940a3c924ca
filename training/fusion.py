"""Fusing learned (seen-class) scores with zero-shot scores, in the spirit of ZegFormer.

ZegFormer (MODELS.md section 2) fuses a learned score ``p`` with a CLIP score ``p'``: for seen
classes ``p^lam * mean_seen(p')^(1 - lam)``, for unseen classes CLIP dominates, and it subtracts a
calibration ``gamma`` from seen-class scores against the bias toward seen classes. Here the learned
score is the head's softmax over its learned classes; classes the head never saw keep their
zero-shot probability. Replacing ``p'`` by its *mean over seen classes* means that, among seen
classes, the ranking is the head's alone (a noisy zero-shot model cannot spoil what was learned),
while the zero-shot model still decides *whether* a pixel belongs to the seen group or to a freshly
typed class.
"""

from __future__ import annotations

import numpy as np

#: Floor of fused scores before taking the log (keeps the head's ranking among clamped scores).
_FLOOR = 1e-6


def softmax(logits: np.ndarray, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax of float32 ``logits`` along ``axis``."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=axis, keepdims=True)).astype(np.float32, copy=False)


def fuse_logits(
    head_logits: np.ndarray,
    learned_positions: list[int],
    zero_shot_logits: np.ndarray | None,
    num_classes: int,
    lam: float = 2 / 3,
    gamma: float = 0.1,
    calibrated: list[bool] | None = None,
) -> np.ndarray:
    """Fused logits float32 [C, h, w] over the current class list.

    ``head_logits`` float32 [K, h, w] are the head's logits for the learned classes present in the
    class list, at positions ``learned_positions`` (K ints in ``0..C-1``). ``zero_shot_logits``
    float32 [C, h, w] (None or all equal = no zero-shot information: uniform). The result is the
    log of the fused, calibrated scores, so a softmax over it gives the fused probabilities.
    ``calibrated`` (K bools, default all True) says which head rows get ``gamma`` subtracted: the
    seen classes (ZegFormer's calibration against the bias toward seen classes), not the rows a
    CaGNet head learned for unseen classes from generated features.
    """
    height, width = head_logits.shape[1:]
    if zero_shot_logits is None:
        zero_shot = np.full((num_classes, height, width), 1.0 / num_classes, np.float32)
    else:
        zero_shot = softmax(zero_shot_logits.astype(np.float32, copy=False))
    learned = np.asarray(learned_positions, dtype=np.int64)
    seen_mean = zero_shot[learned].mean(axis=0, keepdims=True)
    raw = softmax(head_logits) ** lam * seen_mean ** (1.0 - lam)
    scores = zero_shot.copy()
    shift = np.full((len(learned), 1, 1), gamma, np.float32)
    if calibrated is not None:
        shift[~np.asarray(calibrated, dtype=bool)] = 0.0
    scores[learned] = np.maximum(raw - shift, _FLOOR * raw)
    return np.log(np.maximum(scores, _FLOOR * _FLOOR)).astype(np.float32)
