"""ZegFormer's fusion of segment scores and its calibration, exactly as the paper states them.

Notation (seed 001, MODELS.md section 2): for segment ``q`` and class ``c``, ``p_q(c)`` is the
learned segment score, ``p'_q(c)`` the CLIP score of the segment's image crop, ``m_q`` the
segment's soft mask.

- seen ``c``:   ``p_q(c)^lambda * mean_{j in seen} p'_q(j)^(1 - lambda)``
- unseen ``c``: ``p_q(c)^(1 - lambda) * p'_q(c)^lambda``
- per pixel:   ``r(c, x) = sum_q p_q(c) m_q(x)``, then ``r(c) -= gamma`` for seen ``c``; argmax.

Everything here is a pure function of tensors; shapes are stated per function.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The reference code's default balance of learned vs CLIP scores.
DEFAULT_LAMBDA = 2.0 / 3.0
#: The paper's calibration subtracted from seen-class scores.
DEFAULT_GAMMA = 0.1

VARIANTS = ("auto", "img", "seg", "fused")


def fuse_scores(p_seg: Tensor, p_img: Tensor, seen: Tensor, lam: float = DEFAULT_LAMBDA) -> Tensor:
    """Fused per-segment scores float32 ``[N, C]``.

    ``p_seg``, ``p_img``: float32 ``[N, C]`` probabilities (learned and CLIP crop scores);
    ``seen``: bool ``[C]``. With no seen class every class takes the unseen formula.
    """
    seen = seen.to(device=p_seg.device, dtype=torch.bool)
    fused = p_seg.clamp_min(0).pow(1.0 - lam) * p_img.clamp_min(0).pow(lam)
    if bool(seen.any()):
        seen_mean = p_img[:, seen].mean(dim=1, keepdim=True)
        fused[:, seen] = p_seg[:, seen].clamp_min(0).pow(lam) * seen_mean.clamp_min(0).pow(
            1.0 - lam
        )
    return fused


def pixel_scores(scores: Tensor, masks: Tensor) -> Tensor:
    """``r(c, x) = sum_q scores[q, c] * masks[q, x]``: ``[N, C]`` x ``[N, h, w]`` -> ``[C, h, w]``."""
    return torch.einsum("qc,qhw->chw", scores.float(), masks.float())


def calibrate(pixel: Tensor, seen: Tensor, gamma: float = DEFAULT_GAMMA) -> Tensor:
    """``pixel`` ``[C, h, w]`` with ``gamma`` subtracted from the seen-class channels (a copy)."""
    out = pixel.clone()
    seen = seen.to(device=pixel.device, dtype=torch.bool)
    out[seen] -= gamma
    return out


def segment_class_scores(
    variant: str, p_seg: Tensor | None, p_img: Tensor | None, seen: Tensor, lam: float
) -> Tensor:
    """The ``[N, C]`` per-segment scores one variant uses: "seg" (ZegFormer-seg, ``p``), "img"
    (ZegFormer-img, ``p'``) or "fused" (ZegFormer). A variant missing its input raises
    ``ValueError`` (the caller resolves "auto" first)."""
    if variant == "seg" and p_seg is not None:
        return p_seg
    if variant == "img" and p_img is not None:
        return p_img
    if variant == "fused" and p_seg is not None and p_img is not None:
        return fuse_scores(p_seg, p_img, seen, lam)
    raise ValueError(f"ZegFormer variant {variant!r} lacks the scores it needs")


def scores_to_probabilities(pixel: Tensor) -> Tensor:
    """Calibrated ``[C, h, w]`` scores -> non-negative weights summing to 1 per pixel.

    A per-pixel shift (only where some score is negative) then normalisation keeps the argmax.
    """
    low = pixel.amin(dim=0, keepdim=True).clamp(max=0.0)
    shifted = pixel - low + 1e-6
    return shifted / shifted.sum(dim=0, keepdim=True)
