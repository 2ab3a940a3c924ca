"""What the generative step keeps of every human-labelled training image, and its text side.

Per image: a low-resolution *map* on the CLIP patch grid (filter features area-averaged to the
grid, the CLIP features themselves, the labels at the cell centres) for the contextual module,
and a class-balanced set of full-resolution *pixels* (the features the classifier reads at test
time) that the generator learns to imitate, each tied to its grid cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.head import PixelHead, grid_extent, sample_clip_features
from training.samples import balanced_pixels


@dataclass
class ImageMaps:
    """One image: ``filters`` float32 [Ff, gh, gw], ``clip`` float16 [D, gh, gw], ``labels``
    int64 [gh, gw] project class ids (-1 = none); pixels: ``pixel_filters`` float32 [n, Ff],
    ``pixel_clip`` float16 [n, D], ``pixel_labels`` int64 [n] class ids, ``pixel_cells`` int64
    [n] row-major index of the grid cell each pixel lies in."""

    filters: np.ndarray
    clip: np.ndarray
    labels: np.ndarray
    pixel_filters: np.ndarray
    pixel_clip: np.ndarray
    pixel_labels: np.ndarray
    pixel_cells: np.ndarray


def _cells(ys: np.ndarray, xs: np.ndarray, grid: tuple[int, int], extent: tuple[int, int]):
    rows = np.minimum((ys * grid[0]) // extent[0], grid[0] - 1)
    cols = np.minimum((xs * grid[1]) // extent[1], grid[1] - 1)
    return rows * grid[1] + cols


def image_maps(
    view: Any, filters: np.ndarray, targets: np.ndarray, per_class: int, rng: np.random.Generator
) -> ImageMaps | None:
    """:class:`ImageMaps` of one view (``view.features`` float32 [D, gh, gw] must be set;
    ``filters`` float32 [Ff, h, w]; ``targets`` int64 [h, w] class ids, -1 = none), or None when
    the image has no labelled pixel."""
    grid = tuple(int(s) for s in view.features.shape[1:])
    extent = grid_extent(grid, view.size, view.patch_size)
    ys, xs = balanced_pixels(targets, per_class, rng)
    if ys.size == 0:
        return None
    small = F.interpolate(torch.from_numpy(filters)[None], size=grid, mode="area")[0].numpy()
    centre_y = np.minimum(
        ((np.arange(grid[0]) + 0.5) * extent[0] / grid[0]).astype(int), view.size[0] - 1
    )
    centre_x = np.minimum(
        ((np.arange(grid[1]) + 0.5) * extent[1] / grid[1]).astype(int), view.size[1] - 1
    )
    return ImageMaps(
        filters=np.ascontiguousarray(small, dtype=np.float32),
        clip=view.features.astype(np.float16),
        labels=targets[centre_y][:, centre_x].astype(np.int64),
        pixel_filters=np.ascontiguousarray(filters[:, ys, xs].T),
        pixel_clip=sample_clip_features(view.features, ys, xs, extent).astype(np.float16),
        pixel_labels=targets[ys, xs].astype(np.int64),
        pixel_cells=_cells(ys, xs, grid, extent).astype(np.int64),
    )


@dataclass
class GenerativeData:
    """Everything the generative step learns from: per-image maps and the classes' CLIP text
    embeddings (``text`` {class id: float32 [T]}, L2-normalised)."""

    text: dict[int, np.ndarray]
    images: list[ImageMaps] = field(default_factory=list)

    def add(self, maps: ImageMaps | None) -> None:
        if maps is not None:
            self.images.append(maps)

    def text_matrix(self, class_ids: tuple[int, ...]) -> torch.Tensor:
        """float32 [K, T] text embeddings of ``class_ids`` in that order."""
        return torch.from_numpy(np.stack([self.text[c] for c in class_ids]).astype(np.float32))


def pre_mix(head: PixelHead, filters: torch.Tensor, clip: torch.Tensor | None) -> torch.Tensor:
    """The head's pre-mix features float32 [N, hidden] of pixels (filters [N, Ff], clip [N, D]):
    the space the generator imitates and the classifier (``mix`` + ``classifier``) reads."""
    hidden = head.filter_proj((filters - head.filter_mean) / head.filter_std)
    if head.clip_proj is not None and clip is not None:
        hidden = hidden + head.clip_proj(clip)
    return hidden


def map_features(head: PixelHead, maps: ImageMaps) -> torch.Tensor:
    """Pre-mix feature map float32 [1, hidden, gh, gw] of one image's low-resolution map."""
    channels, height, width = maps.filters.shape
    filters = torch.from_numpy(maps.filters).reshape(channels, -1).T
    clip = torch.from_numpy(maps.clip.astype(np.float32)).reshape(maps.clip.shape[0], -1).T
    flat = pre_mix(head, filters, clip)
    return flat.T.reshape(1, -1, height, width).contiguous()


def pixel_features(head: PixelHead, maps: ImageMaps) -> torch.Tensor:
    """Pre-mix features float32 [n, hidden] of one image's stored full-resolution pixels."""
    filters = torch.from_numpy(maps.pixel_filters)
    clip = torch.from_numpy(maps.pixel_clip.astype(np.float32))
    return pre_mix(head, filters, clip)
