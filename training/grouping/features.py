"""What the grouping head reads per pixel: filter features, plus dense CLIP features if loaded.

Everything is computed at the *grouping resolution* (long side ``GroupConfig.size``), which keeps
the work per image bounded whatever the image size; group maps are upsampled afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from training.filters import FilterSpec, compute_filter_features

#: Filter scales at the grouping resolution (pixels).
GROUPING_FILTERS = FilterSpec(sigmas=(1.0, 2.0, 4.0))


@dataclass
class ImageFeatures:
    """One image at grouping resolution.

    ``image`` uint8 [h, w, 3] RGB; ``filters`` float32 [F, h, w]; ``clip`` float32 [D, gh, gw]
    L2-normalised dense CLIP features on the engine's patch grid, or None without CLIP weights;
    ``original_size`` (H, W) of the image on disk.
    """

    image: np.ndarray
    filters: np.ndarray
    clip: np.ndarray | None
    original_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def shrink(image: np.ndarray, long_side: int) -> np.ndarray:
    """``image`` uint8 [H, W, 3] resized (area) so its long side is at most ``long_side``."""
    height, width = image.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    if scale >= 1.0:
        return np.ascontiguousarray(image)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def uses_clip(segmenter: Any) -> bool:
    """True when ``segmenter`` can give dense CLIP features (weights loaded)."""
    return segmenter is not None and bool(getattr(segmenter, "available", False))


def compute_image_features(image: np.ndarray, segmenter: Any, long_side: int) -> ImageFeatures:
    """Features of ``image`` (uint8 [H, W, 3]); CLIP features only when ``uses_clip(segmenter)``."""
    small = shrink(image, long_side)
    filters = compute_filter_features(small, GROUPING_FILTERS)
    clip = segmenter.image_features(image).astype(np.float32) if uses_clip(segmenter) else None
    return ImageFeatures(small, filters, clip, (int(image.shape[0]), int(image.shape[1])))


def upsample_clip(clip: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 [D, gh, gw] -> float32 [D, h, w] (bilinear), renormalised per pixel."""
    import torch
    import torch.nn.functional as F

    grid = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))[None]
    up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0]
    return F.normalize(up, dim=0).numpy()


def resize_nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Integer map [H, W] -> same dtype [h, w] (nearest neighbour; ``size`` is (h, w))."""
    if labels.shape[:2] == tuple(size):
        return labels
    rows = (np.arange(size[0]) + 0.5) * labels.shape[0] / size[0]
    cols = (np.arange(size[1]) + 0.5) * labels.shape[1] / size[1]
    return labels[rows.astype(np.int64)[:, None], cols.astype(np.int64)[None, :]]
