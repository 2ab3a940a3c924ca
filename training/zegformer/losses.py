"""Bipartite matching of predicted segments to human segments, and the losses of the paper.

Masks are logits ``[Q, P]`` (P pixels, flattened) against binary targets ``[G, P]``; ``valid``
``[P]`` marks labelled pixels (unlabelled pixels count for neither loss). As in MaskFormer /
ZegFormer: focal loss (alpha 0.25, gamma 2) weighted 20, dice loss weighted 1, and the class
cross-entropy over C + 1 ("no object" weighted 0.1 for unmatched queries).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

FOCAL_WEIGHT = 20.0
DICE_WEIGHT = 1.0
CLASS_WEIGHT = 1.0
NO_OBJECT_WEIGHT = 0.1
_ALPHA, _GAMMA = 0.25, 2.0


def _focal_terms(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pixel focal loss if the target were 1 (``pos``) or 0 (``neg``), ``[Q, P]`` each."""
    prob = logits.sigmoid()
    pos = (
        _ALPHA
        * (1 - prob) ** _GAMMA
        * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    )
    neg = (
        (1 - _ALPHA)
        * prob**_GAMMA
        * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    )
    return pos, neg


def pairwise_mask_cost(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """``[Q, G]`` focal x 20 + dice cost of every prediction against every target."""
    pos, neg = _focal_terms(logits)
    pos, neg = pos * valid, neg * valid
    count = valid.sum().clamp_min(1)
    focal = (pos @ targets.T + neg @ (1 - targets).T) / count
    prob = logits.sigmoid() * valid
    dice = 1 - (2 * prob @ targets.T + 1) / (prob.sum(1, keepdim=True) + targets.sum(1) + 1)
    return FOCAL_WEIGHT * focal + DICE_WEIGHT * dice


def match(cost: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of ``cost`` ``[Q, G]`` -> (query rows, target columns)."""
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    return rows, cols


def mask_losses(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """Mean over matched pairs of 20 x focal + dice; ``logits``/``targets`` ``[M, P]``."""
    pos, neg = _focal_terms(logits)
    focal = ((pos * targets + neg * (1 - targets)) * valid).sum(1) / valid.sum().clamp_min(1)
    prob = logits.sigmoid() * valid
    dice = 1 - (2 * (prob * targets).sum(1) + 1) / (prob.sum(1) + targets.sum(1) + 1)
    return (FOCAL_WEIGHT * focal + DICE_WEIGHT * dice).mean()


def class_loss(class_logits: Tensor, rows: np.ndarray, target_classes: Tensor) -> Tensor:
    """Cross-entropy over C + 1: matched queries -> their class, others -> "no object"."""
    count = class_logits.shape[1] - 1
    targets = torch.full((class_logits.shape[0],), count, dtype=torch.long)
    targets[torch.as_tensor(rows, dtype=torch.long)] = target_classes
    weights = torch.ones(count + 1)
    weights[count] = NO_OBJECT_WEIGHT
    return F.cross_entropy(class_logits, targets, weight=weights)


def segment_loss(
    mask_logits: Tensor,
    class_logits: Tensor | None,
    targets: Tensor,
    target_classes: Tensor,
    valid: Tensor,
) -> Tensor:
    """Total loss of one image: ``mask_logits`` ``[Q, P]``, ``class_logits`` ``[Q, C + 1]`` or
    None, ``targets`` ``[G, P]`` binary, ``target_classes`` ``[G]`` positions in C."""
    cost = pairwise_mask_cost(mask_logits, targets, valid)
    if class_logits is not None:
        probabilities = class_logits.softmax(-1)[:, target_classes]
        cost = cost - CLASS_WEIGHT * probabilities
    rows, cols = match(cost)
    loss = mask_losses(mask_logits[rows], targets[cols], valid)
    if class_logits is not None:
        loss = loss + CLASS_WEIGHT * class_loss(class_logits, rows, target_classes[cols])
    return loss
