"""Class-agnostic grouping without any labels: image -> N soft segment masks.

1. Each patch of the feature grid is described by its dense CLIP feature, its position and its
   mean colour; k-means (k-means++ seeding, fixed seed) clusters the patches.
2. The cluster map is upsampled to the working resolution and snapped to colour edges: each
   pixel joins, among the clusters of its neighbouring patches, the one whose colour it matches.
3. Each cluster is split into connected parts; the largest parts (at most ``count``) become
   segments and every other pixel joins the nearest kept segment.
4. Soft masks: each segment's indicator lightly blurred, so the masks sum to 1 at every pixel.

Arrays: masks are float32 ``[N, h, w]`` at the working resolution, rows first.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor


@dataclass(frozen=True)
class GroupingSettings:
    """``count`` segments at most; descriptor weights of position and colour against the unit-norm
    features; ``iterations`` of k-means; ``snap`` colour weight of edge snapping (0 = none);
    ``min_area`` smallest kept part as a fraction of the image; ``softness`` blur sigma (px)."""

    count: int = 16
    position_weight: float = 0.5
    colour_weight: float = 0.5
    iterations: int = 12
    snap: float = 8.0
    min_area: float = 0.002
    softness: float = 1.0
    seed: int = 0


def patch_colours(image: np.ndarray, grid: tuple[int, int], patch: int) -> Tensor:
    """Mean RGB in [0, 1] of each cell of ``grid`` over ``image`` ``[h, w, 3]`` uint8 (edge-padded
    to whole patches) -> float32 ``[3, gh, gw]``."""
    height, width = grid[0] * patch, grid[1] * patch
    pad_h, pad_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")[:height, :width]
    small = cv2.resize(padded, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small.astype(np.float32) / 255.0).permute(2, 0, 1)


def patch_descriptors(
    features: Tensor | None, colours: Tensor, settings: GroupingSettings
) -> Tensor:
    """float32 ``[gh * gw, D + 5]``: features, weighted (y, x) in [0, 1], weighted colour."""
    grid = colours.shape[1:]
    ys = torch.linspace(0, 1, grid[0]).view(-1, 1).expand(grid)
    xs = torch.linspace(0, 1, grid[1]).view(1, -1).expand(grid)
    parts = [settings.position_weight * torch.stack([ys, xs]), settings.colour_weight * colours]
    if features is not None:
        parts.insert(0, features.float().cpu())
    return torch.cat(parts).flatten(1).T.contiguous()


def squared_distances(points: Tensor, centres: Tensor) -> Tensor:
    """``[P, K]`` squared Euclidean distances (one matmul; ``torch.cdist`` is ~500x slower here)."""
    cross = points @ centres.T
    return (points.square().sum(1, keepdim=True) - 2 * cross + centres.square().sum(1)).clamp_min(0)


def kmeans(points: Tensor, count: int, iterations: int, seed: int) -> Tensor:
    """Cluster index int64 ``[P]`` of each row of ``points`` ``[P, D]`` (k-means++ seeding)."""
    count = max(1, min(count, points.shape[0]))
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randint(points.shape[0], (1,), generator=generator)]
    for _ in range(1, count):
        nearest = squared_distances(points, centres).amin(dim=1)
        if float(nearest.sum()) <= 0:
            break
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        centres = torch.cat([centres, points[pick]])
    for _ in range(iterations):
        assign = squared_distances(points, centres).argmin(dim=1)
        onehot = F.one_hot(assign, len(centres)).to(points.dtype)
        counts = onehot.sum(dim=0).unsqueeze(1)
        centres = torch.where(counts > 0, (onehot.T @ points) / counts.clamp_min(1), centres)
    return squared_distances(points, centres).argmin(dim=1)


def cluster_colours(assign: Tensor, colours: Tensor, count: int) -> Tensor:
    """Mean RGB ``[K, 3]`` of the patches of each cluster (``colours`` ``[3, gh, gw]``)."""
    onehot = F.one_hot(assign, count).float()
    return (onehot.T @ colours.flatten(1).T) / onehot.sum(dim=0).clamp_min(1).unsqueeze(1)


def snapped_clusters(
    assign: Tensor,
    grid: tuple[int, int],
    image: np.ndarray,
    patch: int,
    colours: Tensor,
    snap: float,
) -> np.ndarray:
    """Working-resolution cluster map int32 ``[h, w]`` from patch clusters ``assign`` ``[gh*gw]``.

    The one-hot cluster grid is upsampled bilinearly (weights ``w_k``); each pixel then takes,
    among the clusters present in its 3 x 3 patch neighbourhood, the one maximising
    ``w_k - snap * |colour - mean colour of k|^2``. Patch-sized steps thus move onto colour edges,
    and clusters of mixed boundary patches (whose mean colour matches neither side) give their
    pixels to the side they look like. ``snap`` 0: plain bilinear argmax.
    """
    count = int(assign.max()) + 1
    onehot = F.one_hot(assign.view(grid), count).permute(2, 0, 1).float().unsqueeze(0)
    size = (grid[0] * patch, grid[1] * patch)
    height, width = image.shape[:2]
    up = F.interpolate(onehot, size=size, mode="bilinear", align_corners=False)[0]
    up = up[:, :height, :width]
    if count < 2 or snap <= 0:
        return up.argmax(dim=0).numpy().astype(np.int32)
    near = F.max_pool2d(onehot, 3, stride=1, padding=1)
    near = F.interpolate(near, size=size, mode="nearest")[0, :, :height, :width]
    pixel = torch.from_numpy(np.require(image, requirements=["C", "W"])).float() / 255.0
    means = cluster_colours(assign, colours, count)  # [K, 3]
    cross = torch.einsum("hwc,kc->khw", pixel, means)
    distance = pixel.square().sum(-1) - 2 * cross + means.square().sum(-1).view(-1, 1, 1)
    score = (up - snap * distance).masked_fill_(near <= 0, float("-inf"))
    return score.argmax(dim=0).numpy().astype(np.int32)


def split_parts(clusters: np.ndarray, count: int, min_pixels: int) -> np.ndarray:
    """Segment index map int32 ``[h, w]`` (0..N-1, N <= ``count``): connected parts of each
    cluster, the largest kept (at least ``min_pixels``), every other pixel given to the nearest
    kept part."""
    parts = np.zeros(clusters.shape, np.int32)
    areas, next_id = [], 1
    for cluster in np.unique(clusters):
        number, labels, stats, _ = cv2.connectedComponentsWithStats(
            (clusters == cluster).astype(np.uint8), connectivity=4
        )
        inside = labels > 0
        parts[inside] = labels[inside] + (next_id - 1)
        areas += [(int(stats[c, cv2.CC_STAT_AREA]), next_id + c - 1) for c in range(1, number)]
        next_id += number - 1
    keep = [pid for area, pid in sorted(areas, reverse=True)[:count] if area >= min_pixels]
    keep = keep or [max(areas)[1]]
    lut = np.zeros(next_id, np.int32)
    lut[keep] = np.arange(1, len(keep) + 1)
    index = lut[parts]
    if (index == 0).any():
        _, (rows, cols) = ndimage.distance_transform_edt(index == 0, return_indices=True)
        index = index[rows, cols]
    return index - 1


def soft_masks(index: np.ndarray, segments: int, softness: float) -> Tensor:
    """float32 ``[N, h, w]`` blurred indicators of ``index`` ``[h, w]``, summing to 1 per pixel."""
    masks = np.stack([(index == q).astype(np.float32) for q in range(segments)])
    if softness > 0:
        for mask in masks:
            cv2.GaussianBlur(mask, (0, 0), softness, dst=mask, borderType=cv2.BORDER_REPLICATE)
        masks /= np.maximum(masks.sum(axis=0, keepdims=True), 1e-6)
    return torch.from_numpy(masks)


def group_image(
    image: np.ndarray, features: Tensor | None, patch: int, settings: GroupingSettings
) -> tuple[Tensor, np.ndarray]:
    """(soft masks float32 ``[N, h, w]``, hard index map int32 ``[h, w]``) of ``image``
    (uint8 ``[h, w, 3]`` working resolution) from its ``features`` ``[D, gh, gw]`` (or None:
    position and colour only)."""
    grid = tuple(features.shape[1:]) if features is not None else (
        -(-image.shape[0] // patch), -(-image.shape[1] // patch))  # fmt: skip
    colours = patch_colours(image, grid, patch)
    points = patch_descriptors(features, colours, settings)
    assign = kmeans(points, settings.count, settings.iterations, settings.seed)
    clusters = snapped_clusters(assign, grid, image, patch, colours, settings.snap)
    min_pixels = max(1, int(settings.min_area * clusters.size))
    index = split_parts(clusters, settings.count, min_pixels)
    segments = int(index.max()) + 1
    return soft_masks(index, segments, settings.softness), index
