"""From dense features to labels the way the published protocols do it.

Order (NACLIP / SCLIP / ClearCLIP): cosine logits per query name on each window's patch grid,
bilinearly upsampled to the window's pixels; overlapping windows averaged in pixel space; upsampled
to the original image size; optionally refined (PAMR, on logits); times the logit scale; softmax
over all query names; a class scores the max of its names' probabilities; argmax.

Coordinates are ``(y, x)`` pixels; arrays are ``[channels, rows, columns]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from annotator.engine.features import Layout, Windows

#: ``groups[c]``: the query rows (names) of class ``c``; ``None`` when every class is one query.
Groups = list[list[int]] | None


def grid_logits(text: Tensor, features: Tensor, layout: Layout) -> Tensor:
    """Whole image: ``[Q, h, w]`` cosine logits of ``text`` ``[Q, D]`` with ``features``
    ``[D, gh, gw]``, upsampled to the padded size and cropped to the working size."""
    grid = torch.einsum("qd,dhw->qhw", text.to(features.device), features).unsqueeze(0)
    logits = F.interpolate(grid, size=layout.padded, mode="bilinear", align_corners=False)[0]
    return logits[:, : layout.working[0], : layout.working[1]]


def window_logits(text: Tensor, windows: Windows, layout: Layout) -> Tensor:
    """Sliding windows: each window's ``[Q, gh, gw]`` logits upsampled to its pixels, summed on
    the padded canvas and divided by the number of windows covering each pixel -> ``[Q, h, w]``.

    Windows of one size are scored and upsampled as one batch (fewer, larger operations)."""
    patch = layout.patch
    text = text.to(windows[0][2].device)
    total = text.new_zeros(text.shape[0], *layout.padded)
    count = text.new_zeros(1, *layout.padded)
    shapes: dict[tuple[int, ...], list[tuple[int, int, Tensor]]] = {}
    for window in windows:
        shapes.setdefault(tuple(window[2].shape), []).append(window)
    for (_, grid_h, grid_w), group in shapes.items():
        feats = torch.stack([feat for _, _, feat in group])
        grids = torch.einsum("qd,ndhw->nqhw", text, feats)
        height, width = grid_h * patch, grid_w * patch
        pixels = F.interpolate(grids, size=(height, width), mode="bilinear", align_corners=False)
        for (y, x, _), logits in zip(group, pixels, strict=True):
            total[:, y : y + height, x : x + width] += logits
            count[:, y : y + height, x : x + width] += 1
    return (total / count)[:, : layout.working[0], : layout.working[1]]


def group_queries(per_class: Sequence[Sequence[str]]) -> Groups:
    """Query rows of each class when its names are flattened in order (``None``: one each)."""
    if all(len(names) == 1 for names in per_class):
        return None
    groups, start = [], 0
    for names in per_class:
        groups.append(list(range(start, start + len(names))))
        start += len(names)
    return groups


def class_probabilities(scaled: Tensor, groups: Groups) -> Tensor:
    """Softmax of ``scaled`` ``[Q, ...]`` logits over all queries, then the max over each class's
    queries -> ``[C, ...]`` (the references' synonym rule)."""
    probabilities = torch.softmax(scaled, dim=0)
    if groups is None:
        return probabilities
    return torch.stack([probabilities[rows].amax(dim=0) for rows in groups])


def class_logits(scaled: Tensor, groups: Groups) -> Tensor:
    """Per-class logits ``[C, ...]``: the max over each class's query logits (same argmax as
    :func:`class_probabilities`); what a :class:`LogitAdapter` sees."""
    if groups is None:
        return scaled
    return torch.stack([scaled[rows].amax(dim=0) for rows in groups])


def refine_size(original: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The size refinement runs at: the original, or scaled down to ``max_pixels``."""
    height, width = original
    if height * width <= max_pixels:
        return original
    scale = math.sqrt(max_pixels / (height * width))
    return max(1, int(height * scale)), max(1, int(width * scale))


def upsample(values: Tensor, size: tuple[int, int]) -> Tensor:
    """``values`` ``[C, h, w]`` -> ``[C, H, W]`` bilinear (align_corners=False)."""
    if tuple(values.shape[-2:]) == tuple(size):
        return values
    return F.interpolate(values.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]


def refined_logits(
    scaled: Tensor,
    image: Tensor,
    size: tuple[int, int],
    refiner: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """``scaled`` working logits ``[Q, h, w]`` upsampled to ``size`` and refined along ``image``
    ``[3, h, w]`` float (the working image, upsampled the same way)."""
    return refiner(upsample(image, size), upsample(scaled, size))
