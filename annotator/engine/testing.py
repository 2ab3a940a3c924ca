"""Models for tests: a tiny random ViT registered with open_clip, and planted encoders.

A *planted* segmenter runs the real pipeline (working resolution, padding, sliding windows,
positional-grid interpolation, text templates, synonyms, caching, upsampling, thresholds) with
encoders constructed so the right answer is known: each pixel's colour votes for the nearest
palette colour, patches average those votes, and the text encoder maps each palette name to that
colour's direction. Regions painted in a palette colour must come back labelled with its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from annotator.engine.backbone import Backbone, interpolate_grid_embedding
from annotator.engine.config import EngineConfig
from annotator.engine.devices import select_device, select_dtype
from annotator.engine.segmenter import Segmenter
from annotator.engine.weights import register_model_configs

#: A 3-block ViT with 64 channels and 16-pixel patches (use with ``pretrained=None``).
TINY_MODEL = "annotator-tiny-vit"

_MEAN = (0.5, 0.5, 0.5)
_STD = (0.25, 0.25, 0.25)

register_model_configs()


class PlantedImageEncoder(nn.Module):
    """Normalised pixels ``[B, 3, H, W]`` -> features ``[B, K + 2, H / p, W / p]``.

    Channel k < K: the fraction of the patch's pixels nearest to palette colour k; channel K: the
    fraction matching no palette colour (distance over ``0.1`` in [0, 1] RGB); channel K + 1: a
    small positional signal interpolated from a 4 x 4 grid (as a ViT's positional embedding is).
    """

    def __init__(self, palette: Tensor, patch_size: int = 16, sharpness: float = 400.0) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.sharpness = sharpness
        self.register_buffer("palette", palette.float())
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.register_buffer("pos_grid", torch.linspace(0, 0.05, 16).view(4, 4, 1))
        self.calls = 0

    def forward(self, pixels: Tensor) -> Tensor:
        self.calls += 1
        rgb = pixels.float() * self.std + self.mean
        distance = (rgb.unsqueeze(1) - self.palette.view(1, -1, 3, 1, 1)).square().sum(dim=2)
        none = torch.full_like(distance[:, :1], 0.1**2)
        votes = torch.softmax(-self.sharpness * torch.cat([distance, none], dim=1), dim=1)
        features = F.avg_pool2d(votes, self.patch_size)
        grid = (features.shape[2], features.shape[3])
        pos = interpolate_grid_embedding(self.pos_grid, grid).view(1, 1, *grid)
        return torch.cat([features, pos.expand(features.shape[0], -1, -1, -1)], dim=1)


class PlantedTextEncoder:
    """Prompts -> ``[P, K + 2]``: the direction of the palette name the prompt contains.

    The longest palette name found as whole words in the prompt wins; a prompt naming none maps to
    the "no palette colour" direction.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = [name.lower() for name in names]
        self.calls = 0

    def __call__(self, prompts: Sequence[str]) -> Tensor:
        self.calls += 1
        out = torch.zeros(len(prompts), len(self.names) + 2)
        for row, prompt in enumerate(prompts):
            out[row, self._index(prompt.lower())] = 1.0
        return out

    def _index(self, prompt: str) -> int:
        found = [
            (len(name), index)
            for index, name in enumerate(self.names)
            if re.search(rf"\b{re.escape(name)}\b", prompt)
        ]
        return max(found)[1] if found else len(self.names)


def create_planted_backbone(
    palette: Mapping[str, tuple[int, int, int]], patch_size: int = 16
) -> Backbone:
    """A :class:`Backbone` whose encoders know ``palette`` (name -> RGB 0..255)."""
    colours = torch.tensor([list(rgb) for rgb in palette.values()], dtype=torch.float32) / 255.0
    encoder = PlantedImageEncoder(colours, patch_size)
    return Backbone(
        image_encoder=encoder,
        text_encoder=PlantedTextEncoder(list(palette)),
        patch_size=patch_size,
        embed_dim=len(palette) + 2,
        mean=_MEAN,
        std=_STD,
        key="planted|" + ",".join(f"{k}={v}" for k, v in palette.items()),
    )


def create_planted_segmenter(
    palette: Mapping[str, tuple[int, int, int]], patch_size: int = 8, **config: object
) -> Segmenter:
    """A real :class:`Segmenter` over planted encoders; ``config`` sets :class:`EngineConfig`."""
    settings = EngineConfig(model="planted", pretrained=None, **config)
    device = select_device(settings.device)
    backbone = create_planted_backbone(palette, patch_size)
    backbone.to(device)
    return Segmenter(settings, backbone, device, select_dtype(settings.precision, device))
