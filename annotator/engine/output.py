"""Turning working-resolution probabilities into full-resolution labels, band by band.

A 12000 x 9000 image with a few classes would need gigabytes as one upsampled tensor; bilinear
upsampling is separable, so output rows are produced in bands whose memory is bounded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_BAND_BYTES = 64 * 1024 * 1024


def _source_rows(rows: Tensor, scale: float, limit: int) -> tuple[Tensor, Tensor, Tensor]:
    """Bilinear (align_corners=False) source rows and weights for output ``rows``."""
    src = ((rows.double() + 0.5) * scale - 0.5).clamp(min=0.0)
    low = src.floor().long().clamp(max=limit - 1)
    high = (low + 1).clamp(max=limit - 1)
    weight = (src - low.double()).float()
    return low, high, weight


def upsample_rows(values: Tensor, rows: Tensor, width: int, height: int) -> Tensor:
    """Rows ``rows`` of ``values`` ``[C, h, w]`` bilinearly resized to ``[C, height, width]``.

    Equal to ``F.interpolate(values[None], (height, width), mode="bilinear")[0][:, rows]``.
    """
    channels, h, _ = values.shape
    low, high, weight = _source_rows(rows, h / height, h)
    band = values[:, low] * (1 - weight)[None, :, None] + values[:, high] * weight[None, :, None]
    band = band.reshape(1, channels * len(rows), -1)
    band = F.interpolate(band, size=width, mode="linear", align_corners=False)
    return band.reshape(channels, len(rows), width)


def label_dtype(labels: int) -> np.dtype:
    """uint8 while every label (0..labels-1) fits, else uint16."""
    return np.dtype(np.uint8) if labels <= 256 else np.dtype(np.uint16)


def full_resolution_labels(
    probabilities: Tensor,
    size: tuple[int, int],
    background_threshold: float | None,
    band_bytes: int = _BAND_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Label map ``[H, W]`` and confidence ``[H, W]`` float32 from ``probabilities`` ``[C, h, w]``.

    Below ``background_threshold`` a pixel gets label ``C`` (the background index).
    """
    height, width = size
    channels = probabilities.shape[0]
    labels = np.empty(size, label_dtype(channels + (background_threshold is not None)))
    confidence = np.empty(size, np.float32)
    band = max(1, band_bytes // max(1, channels * width * 4))
    for top in range(0, height, band):
        rows = torch.arange(top, min(top + band, height), device=probabilities.device)
        best, index = upsample_rows(probabilities, rows, width, height).max(dim=0)
        if background_threshold is not None:
            index = torch.where(best < background_threshold, channels, index)
        labels[top : top + len(rows)] = index.cpu().numpy()
        confidence[top : top + len(rows)] = best.cpu().numpy()
    return labels, confidence
