"""The pixel embedding head and MaskContrast's losses.

The head maps per-pixel input features (standardised filter features, optionally followed by
dense CLIP features) to L2-normalised embeddings, plus a one-channel mask logit. Training pulls
each pixel toward the prototype (mean key embedding) of its own mask and away from the other
masks' prototypes in the batch and in a memory bank of earlier prototypes; the mask-prediction
loss (balanced BCE against the foreground proposal) keeps an image's pixels from collapsing
onto one point. Keys come from a momentum copy of the head on an augmented second view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Window sizes (pixels at grouping resolution) over which hidden responses are averaged.
POOL_SIZES = (5, 11)


class EmbeddingHead(nn.Module):
    """[B, C, h, w] float32 input features -> ([B, E, h, w] unit embeddings, [B, 1, h, w] logit).

    ``mean``/``std`` (buffers, [C]) standardise the input; set them from the folder's features.
    """

    def __init__(self, in_channels: int, dim: int = 32, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_channels))
        self.register_buffer("std", torch.ones(in_channels))
        self.pixel = nn.Conv2d(in_channels, hidden, 1)
        self.mix = nn.Conv2d(hidden * (1 + len(POOL_SIZES)), hidden, 1)
        self.embed = nn.Conv2d(hidden, dim, 1)
        self.mask = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]
        local = F.relu(self.pixel(x))
        # Textures are local statistics, not pointwise values: pooled responses give context.
        pooled = [
            F.avg_pool2d(local, size, stride=1, padding=size // 2, count_include_pad=False)
            for size in POOL_SIZES
        ]
        hidden = F.relu(self.mix(torch.cat([local, *pooled], dim=1)))
        return F.normalize(self.embed(hidden), dim=1), self.mask(hidden)


class PrototypeBank:
    """A first-in first-out memory bank of ``size`` unit prototypes [size, E] (the negatives)."""

    def __init__(self, size: int, dim: int, generator: torch.Generator) -> None:
        self.items = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.pointer = 0

    def push(self, prototypes: torch.Tensor) -> None:
        for row in prototypes.detach():
            self.items[self.pointer] = row
            self.pointer = (self.pointer + 1) % len(self.items)


def mask_prototypes(keys: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-mask mean key embedding.

    ``keys`` [B, E, h, w] unit embeddings; ``masks`` int64 [B, h, w] mask index per pixel,
    -1 = no mask, indices unique across the batch (0..M-1). Returns (unit prototypes [M, E],
    bool [M] present: masks with at least one pixel).
    """
    dim = keys.shape[1]
    flat_keys = keys.permute(0, 2, 3, 1).reshape(-1, dim)
    flat_masks = masks.reshape(-1)
    inside = flat_masks >= 0
    count = int(flat_masks.max().item()) + 1 if inside.any() else 0
    sums = torch.zeros(count, dim, dtype=keys.dtype)
    sums.index_add_(0, flat_masks[inside], flat_keys[inside])
    sizes = torch.bincount(flat_masks[inside], minlength=count)
    return F.normalize(sums, dim=1), sizes > 0


def contrastive_loss(
    queries: torch.Tensor,
    masks: torch.Tensor,
    prototypes: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    max_pixels: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Cross-entropy of each query pixel over [batch prototypes; bank negatives], target = its
    own mask's prototype. ``queries`` [B, E, h, w]; ``masks`` int64 [B, h, w] (-1 = none);
    at most ``max_pixels`` random pixels take part."""
    dim = queries.shape[1]
    flat = queries.permute(0, 2, 3, 1).reshape(-1, dim)
    target = masks.reshape(-1)
    index = torch.nonzero(target >= 0).squeeze(1)
    if len(index) > max_pixels:
        index = index[torch.randperm(len(index), generator=generator)[:max_pixels]]
    logits = flat[index] @ torch.cat([prototypes, negatives]).T / temperature
    return F.cross_entropy(logits, target[index])


def balanced_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE with each class weighted by the other's share (``logits``/``target`` [B, 1, h, w])."""
    positive = target.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(target > 0.5, 1 - positive, positive)
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight) * 2
