"""Segment-level CLIP scores ``p'_q(c)``: name each class-agnostic segment with CLIP.

- ``pool``: the dense features averaged inside the mask (cheap: no extra encoder pass).
- ``crop``: ZegFormer's masked crop: pixels outside the mask zeroed (in normalised space, i.e. the
  mean colour), the crop cut to the mask's box and resized to the model's input size, encoded in
  batches by the CLIP image tower (its own class-token embedding; encoders without one, such as
  the planted test encoders, give the mean of their dense output).

Either way: cosine with the class text embeddings x the logit scale, softmax over the classes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from annotator.engine.features import to_pixels
from annotator.engine.proposers import SEGMENT_SCORES

SCORES = SEGMENT_SCORES

#: Input size of encoders that do not state one (CLIP's own resolution).
DEFAULT_INPUT_SIZE = 224


def class_probabilities(embeddings: Tensor, text: Tensor, logit_scale: float) -> Tensor:
    """softmax over C of ``logit_scale * cos(embeddings [N, D], text [C, D])`` -> ``[N, C]``."""
    cosine = F.normalize(embeddings.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T
    return torch.softmax(logit_scale * cosine, dim=-1)


def pooled_embeddings(features: Tensor, masks: Tensor, patch: int) -> Tensor:
    """Mask-weighted mean of ``features`` ``[D, gh, gw]`` per mask of ``masks`` ``[N, h, w]``
    (working resolution, the grid covering the image padded to whole patches) -> ``[N, D]``."""
    grid = features.shape[1:]
    pad_h, pad_w = grid[0] * patch - masks.shape[1], grid[1] * patch - masks.shape[2]
    padded = F.pad(masks.float(), (0, pad_w, 0, pad_h))
    weights = F.avg_pool2d(padded.unsqueeze(1), patch)[:, 0].to(features.device)
    total = torch.einsum("nhw,dhw->nd", weights, features.float())
    return total / weights.flatten(1).sum(dim=1, keepdim=True).clamp_min(1e-6)


def mask_boxes(masks: Tensor, threshold: float = 0.5) -> list[tuple[int, int, int, int]]:
    """``(top, left, bottom, right)`` (exclusive) of each mask's pixels above ``threshold``;
    the whole image for an empty mask."""
    boxes = []
    for mask in masks > threshold:
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        if len(rows) == 0:
            boxes.append((0, 0, mask.shape[0], mask.shape[1]))
        else:
            boxes.append((int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1))
    return boxes


def masked_crops(pixels: Tensor, masks: Tensor, size: int) -> Tensor:
    """``[N, 3, size, size]``: ``pixels`` ``[1, 3, Hp, Wp]`` (normalised, padded) times each mask
    ``[N, h, w]``, cut to the mask's box, resized bilinearly."""
    crops = []
    for mask, (top, left, bottom, right) in zip(masks, mask_boxes(masks), strict=True):
        region = pixels[0, :, top:bottom, left:right] * mask[top:bottom, left:right].to(pixels)
        resized = F.interpolate(region[None], size=(size, size), mode="bilinear")
        crops.append(resized[0])
    return torch.stack(crops)


def image_embeddings(encoder: Any, crops: Tensor, batch_size: int) -> Tensor:
    """``[N, D]`` image embeddings of ``crops`` ``[N, 3, S, S]``: the CLIP tower's pooled output
    when the encoder wraps one (``encoder.visual``), else the mean of its dense output."""
    visual = getattr(encoder, "visual", None)
    outputs = []
    for first in range(0, crops.shape[0], max(1, batch_size)):
        chunk = crops[first : first + max(1, batch_size)]
        if visual is not None:
            pooled = visual(chunk)
            outputs.append((pooled[0] if isinstance(pooled, tuple) else pooled).float())
        else:
            outputs.append(F.normalize(encoder(chunk).float(), dim=1).mean(dim=(2, 3)))
    return torch.cat(outputs)


def input_size(encoder: Any, patch: int) -> int:
    """The model's native input side (``visual.image_size``), else 224, as whole patches."""
    size = getattr(getattr(encoder, "visual", None), "image_size", DEFAULT_INPUT_SIZE)
    size = size[0] if isinstance(size, tuple | list) else int(size)
    return max(patch, size // patch * patch)


def crop_embeddings(segmenter: Any, image: Any, layout: Any, masks: Tensor) -> Tensor:
    """``[N, D]`` CLIP embeddings of the masked crops of ``masks`` ``[N, h, w]`` on ``image``."""
    backbone = segmenter.backbone
    pixels = to_pixels(image, layout.padded, backbone.mean, backbone.std, segmenter.device)
    size = input_size(backbone.image_encoder, layout.patch)
    crops = masked_crops(pixels, masks.to(segmenter.device), size)
    return image_embeddings(backbone.image_encoder, crops, segmenter.config.batch_size)
