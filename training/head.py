"""The light per-pixel head trained on a project's labels.

The head reads two feature sources per pixel: the multi-scale filter features
(:mod:`training.filters`, full resolution) and, when a CLIP model is loaded, the frozen dense CLIP
features of the engine (patch grid). Its first layer is linear in both, so the CLIP part is
projected on the coarse patch grid and only then upsampled bilinearly: exactly what projecting the
upsampled features would give, at a fraction of the memory.

Structure, chosen so CaGNet's generative step (MODELS.md section 3) can be added next:
``embed`` maps features to a ``hidden``-dimensional pixel embedding; ``classifier`` is one linear
layer over that embedding with one row per learned class. A generator that maps a class's CLIP
text embedding (plus noise) to fake pixel *embeddings* can then train new classifier rows for
unseen classes (:meth:`PixelHead.add_classes`) without touching the feature extractors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Pixels per chunk in :meth:`PixelHead.forward_map` (bounds memory, keeps data in cache).
_CHUNK = 1 << 15


@dataclass(frozen=True)
class HeadSpec:
    """Shape of a head: input widths, embedding width and learned classes (project class ids)."""

    filter_channels: int
    clip_channels: int
    hidden: int
    class_ids: tuple[int, ...]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> HeadSpec:
        return cls(
            filter_channels=int(data["filter_channels"]),
            clip_channels=int(data["clip_channels"]),
            hidden=int(data["hidden"]),
            class_ids=tuple(int(i) for i in data["class_ids"]),
        )


class PixelHead(nn.Module):
    """Per-pixel MLP over [filter features || CLIP features] -> logits over learned classes."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("filter_mean", torch.zeros(spec.filter_channels))
        self.register_buffer("filter_std", torch.ones(spec.filter_channels))
        self.filter_proj = nn.Linear(spec.filter_channels, spec.hidden)
        self.clip_proj = (
            nn.Linear(spec.clip_channels, spec.hidden, bias=False) if spec.clip_channels else None
        )
        self.mix = nn.Sequential(nn.ReLU(), nn.Linear(spec.hidden, spec.hidden), nn.ReLU())
        self.classifier = nn.Linear(spec.hidden, len(spec.class_ids))

    def set_normalisation(self, filter_samples: torch.Tensor) -> None:
        """Standardise filter features with the mean/std of ``filter_samples`` float32 [N, F]."""
        self.filter_mean.copy_(filter_samples.mean(0))
        self.filter_std.copy_(filter_samples.std(0).clamp_min(1e-6))

    def embed(self, filters: torch.Tensor, clip: torch.Tensor | None) -> torch.Tensor:
        """Pixel embeddings float32 [N, hidden] from filters [N, Ff] and clip [N, D] (or None)."""
        hidden = self.filter_proj((filters - self.filter_mean) / self.filter_std)
        if self.clip_proj is not None and clip is not None:
            hidden = hidden + self.clip_proj(clip)
        return self.mix(hidden)

    def forward(self, filters: torch.Tensor, clip: torch.Tensor | None = None) -> torch.Tensor:
        """Logits float32 [N, K] over ``spec.class_ids`` for N pixels."""
        return self.classifier(self.embed(filters, clip))

    def forward_map(
        self,
        filters: torch.Tensor,
        clip_grid: torch.Tensor | None,
        extent: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Logits float32 [K, H, W] from filters [Ff, H, W] and clip_grid [D, gh, gw] (or None).

        The grid covers ``extent`` (rows, cols) pixels from the top-left corner (default: the
        image, H x W); see :func:`grid_extent`. Computed channel-first in column chunks (the
        same layers as :meth:`forward`, with the standardisation folded into the first one).
        """
        channels, height, width = filters.shape
        flat = filters.reshape(channels, -1)
        clip = None
        if self.clip_proj is not None and clip_grid is not None:
            projected = torch.einsum("hd,dyx->hyx", self.clip_proj.weight, clip_grid)
            clip = F.interpolate(
                projected[None],
                size=extent or (height, width),
                mode="bilinear",
                align_corners=False,
            )[0, :, :height, :width].reshape(self.spec.hidden, -1)
        weight = self.filter_proj.weight / self.filter_std
        bias = self.filter_proj.bias - weight @ self.filter_mean
        mix, classifier = self.mix[1], self.classifier
        out = torch.empty(classifier.out_features, flat.shape[1], dtype=flat.dtype)
        for start in range(0, flat.shape[1], _CHUNK):
            cols = slice(start, start + _CHUNK)
            hidden = torch.addmm(bias[:, None], weight, flat[:, cols])
            if clip is not None:
                hidden += clip[:, cols]
            hidden = torch.addmm(mix.bias[:, None], mix.weight, hidden.relu_()).relu_()
            out[:, cols] = torch.addmm(classifier.bias[:, None], classifier.weight, hidden)
        return out.reshape(-1, height, width)

    def add_classes(self, class_ids: tuple[int, ...]) -> None:
        """Append classifier rows for ``class_ids`` (initialised at zero), e.g. for CaGNet."""
        old = self.classifier
        new = nn.Linear(self.spec.hidden, old.out_features + len(class_ids)).to(old.weight.device)
        with torch.no_grad():
            new.weight.zero_()
            new.bias.zero_()
            new.weight[: old.out_features] = old.weight
            new.bias[: old.out_features] = old.bias
        self.classifier = new
        self.spec = HeadSpec(
            self.spec.filter_channels,
            self.spec.clip_channels,
            self.spec.hidden,
            self.spec.class_ids + tuple(class_ids),
        )


def grid_extent(
    grid_shape: tuple[int, int], size: tuple[int, int], patch_size: int | None
) -> tuple[int, int]:
    """Pixels (rows, cols) a patch grid of ``grid_shape`` (gh, gw) covers over an image of
    ``size`` (h, w): ``(gh * p, gw * p)`` when that is how the engine padded the image (it may
    extend past the image by less than one patch), else the image itself."""
    if patch_size:
        extent = (grid_shape[0] * patch_size, grid_shape[1] * patch_size)
        if all(0 <= e - s < patch_size for e, s in zip(extent, size, strict=True)):
            return extent
    return size


def sample_clip_features(
    clip_grid: np.ndarray, ys: np.ndarray, xs: np.ndarray, extent: tuple[int, int]
) -> np.ndarray:
    """CLIP features at pixels, interpolated bilinearly from the patch grid.

    ``clip_grid`` float32 [D, gh, gw] covers ``extent`` (rows, cols) pixels from the top-left
    corner (see :func:`grid_extent`); ``ys``/``xs`` int arrays
    [N] of pixel rows/columns. Returns float32 [N, D], the same values
    :meth:`PixelHead.forward_map` sees after bilinear upsampling (``align_corners=False``).
    """
    height, width = extent
    grid = torch.from_numpy(np.ascontiguousarray(clip_grid, dtype=np.float32))[None]
    gx = (2.0 * (xs.astype(np.float32) + 0.5) / width) - 1.0
    gy = (2.0 * (ys.astype(np.float32) + 0.5) / height) - 1.0
    points = torch.from_numpy(np.stack([gx, gy], axis=-1))[None, None]
    sampled = F.grid_sample(
        grid, points, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled[0, :, 0, :].T.contiguous().numpy()
