"""Working resolution, pixel normalisation and dense encoding (whole image or sliding windows).

Coordinates: ``(height, width)`` tuples, row-major arrays. The working image is the original
resized so its short side is ``short_side`` (long side capped); it is then zero-padded (in
normalised space, i.e. with the mean colour) at the bottom and right to a multiple of the patch
size. Features live on the patch grid of that padded image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Layout:
    """Sizes ``(H, W)`` of one image: original, working, and working padded to whole patches."""

    original: tuple[int, int]
    working: tuple[int, int]
    padded: tuple[int, int]
    patch: int

    @property
    def grid(self) -> tuple[int, int]:
        return self.padded[0] // self.patch, self.padded[1] // self.patch


def plan_layout(
    original: tuple[int, int], short_side: int, max_long_side: int, patch: int
) -> Layout:
    """Working size for an image of size ``original``: short side ``short_side``, long side capped."""
    height, width = original
    scale = short_side / min(height, width)
    scale = min(scale, max(max_long_side, short_side) / max(height, width))
    # Rounded half up, as mmcv (the references' resize) does.
    working = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
    padded = tuple(math.ceil(side / patch) * patch for side in working)
    return Layout(original, working, padded, patch)


def resize_image(
    image: np.ndarray, size: tuple[int, int], resize_filter: str = "bilinear"
) -> np.ndarray:
    """Resize ``image`` ``[H, W, 3]`` uint8 to ``size`` ``(h, w)``: bilinear (as the published
    protocols resize), or with ``resize_filter="area"`` the area filter when shrinking."""
    if image.shape[:2] == size:
        return image
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    area = shrinking and resize_filter == "area"
    interpolation = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    return cv2.resize(image, (size[1], size[0]), interpolation=interpolation)


def to_pixels(
    image: np.ndarray,
    padded: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    device: torch.device,
) -> Tensor:
    """``image`` ``[h, w, 3]`` uint8 -> normalised ``[1, 3, Hp, Wp]`` float32, zero-padded."""
    # np.require copies only when needed: torch cannot wrap a read-only array safely.
    pixels = torch.from_numpy(np.require(image, requirements=["C", "W"])).to(device)
    pixels = pixels.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    pixels = (pixels - mean_t) / std_t
    pad_h, pad_w = padded[0] - image.shape[0], padded[1] - image.shape[1]
    return F.pad(pixels, (0, pad_w, 0, pad_h)) if pad_h or pad_w else pixels


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of ``window`` covering ``length`` with ``stride`` (last one flush)."""
    if window >= length:
        return [0]
    starts = list(range(0, length - window, stride))
    return [*starts, length - window]


@dataclass(frozen=True)
class Tiling:
    """How to encode: ``window`` 0 = whole image, else square windows moved by ``stride``."""

    window: int
    stride: int
    batch_size: int = 4


def choose_tiling(
    layout: Layout, window: int, stride: int | None, max_tokens: int, batch_size: int
) -> Tiling:
    """The configured tiling, switching to windows when the whole image has too many patches."""
    patch = layout.patch
    tokens = layout.grid[0] * layout.grid[1]
    if window <= 0 and tokens > max_tokens:
        window = min(layout.padded)
    if window <= 0:
        return Tiling(0, 0, batch_size)
    window = max(patch, window // patch * patch)
    step = stride if stride else window // 2
    step = max(patch, step // patch * patch)
    return Tiling(window, step, batch_size)


#: Per-window features: ``(y, x, features [D, gh, gw])``, offsets in pixels of the padded image.
Windows = list[tuple[int, int, Tensor]]


def encode_dense(encoder: nn.Module, pixels: Tensor, tiling: Tiling, patch: int) -> Tensor:
    """Dense features ``[D, gh, gw]`` float32, L2-normalised over D, of ``pixels`` ``[1,3,Hp,Wp]``.

    With windows, each window's features are normalised, overlapping windows averaged on the
    shared patch grid (window offsets are whole patches), and the average renormalised.
    """
    return encode_dense_windows(encoder, pixels, tiling, patch)[0]


def encode_dense_windows(
    encoder: nn.Module, pixels: Tensor, tiling: Tiling, patch: int
) -> tuple[Tensor, Windows | None]:
    """:func:`encode_dense` plus each window's own normalised features (``None`` for the whole
    image): sliding-window protocols score every window on its own and average the logits."""
    if tiling.window <= 0:
        return F.normalize(encoder(pixels)[0].float(), dim=0), None
    height, width = pixels.shape[-2:]
    win_h, win_w = min(tiling.window, height), min(tiling.window, width)
    boxes = [
        (y, x)
        for y in window_starts(height, win_h, tiling.stride)
        for x in window_starts(width, win_w, tiling.stride)
    ]
    windows: Windows = []
    for first in range(0, len(boxes), tiling.batch_size):
        chunk = boxes[first : first + tiling.batch_size]
        crops = torch.cat([pixels[:, :, y : y + win_h, x : x + win_w] for y, x in chunk])
        feats = F.normalize(encoder(crops).float(), dim=1)
        windows += [(y, x, feat) for (y, x), feat in zip(chunk, feats, strict=True)]
    return _average_windows(windows, (height // patch, width // patch), patch), windows


def _average_windows(windows: Windows, grid: tuple[int, int], patch: int) -> Tensor:
    """Renormalised mean of the windows' features on the shared patch grid ``[D, gh, gw]``."""
    total = windows[0][2].new_zeros(windows[0][2].shape[0], *grid)
    count = total.new_zeros(1, *grid)
    for y, x, feat in windows:
        gy, gx = y // patch, x // patch
        total[:, gy : gy + feat.shape[1], gx : gx + feat.shape[2]] += feat
        count[:, gy : gy + feat.shape[1], gx : gx + feat.shape[2]] += 1
    return F.normalize(total / count, dim=0)
