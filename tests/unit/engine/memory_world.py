"""A world where the text of a labelled class points at another class's pixels.

The planted image encoder knows three colours (cat = red, dog = blue, grass = green); the text
encoder maps both "cat" and "dog" to the *blue* direction, as if CLIP's embedding of the user's
word "cat" described what this data set calls dog. Zero-shot, cat therefore takes the dog's pixels
(it comes first among the two) and the red cat pixels go to grass (all scores tie at 0 there).
Only the project's labels can reveal that "cat" means red here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from annotator.engine.backbone import Backbone
from annotator.engine.config import EngineConfig
from annotator.engine.devices import select_device, select_dtype
from annotator.engine.segmenter import Segmenter
from annotator.engine.testing import PlantedImageEncoder

COLOURS = {"cat": (220, 40, 40), "dog": (40, 40, 220), "grass": (40, 200, 40)}
#: Class order of the world (display order in projects): grass first, so ties go to grass.
CLASSES = ("grass", "cat", "dog")
_TEXT_CHANNEL = {"cat": 1, "dog": 1, "grass": 2}


class ConfusedText:
    """Prompts -> ``[P, 5]`` one-hot: "cat" and "dog" -> blue channel, "grass" -> green."""

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), 5)
        for row, prompt in enumerate(prompts):
            found = [c for name, c in _TEXT_CHANNEL.items() if name in prompt.lower()]
            out[row, found[0] if found else 3] = 1.0
        return out


def create_confused_segmenter(patch_size: int = 8, **config: object) -> Segmenter:
    """A real segmenter over the planted image encoder and :class:`ConfusedText`."""
    config = {"short_side": 64, **config}
    settings = EngineConfig(model="planted", pretrained=None, device="cpu", **config)
    palette = torch.tensor([COLOURS[n] for n in ("cat", "dog", "grass")], dtype=torch.float32)
    backbone = Backbone(
        image_encoder=PlantedImageEncoder(palette / 255.0, patch_size),
        text_encoder=ConfusedText(),
        patch_size=patch_size,
        embed_dim=5,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        key="planted-confused",
    )
    device = select_device("cpu")
    return Segmenter(settings, backbone, device, select_dtype("auto", device))


def scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 ``[S, S, 3]``, truth int64 ``[S, S]`` index into ``CLASSES``): grass with a
    cat rectangle in the left half and a dog rectangle in the right half, mild pixel noise."""
    truth = np.zeros((size, size), np.int64)
    for index, (left, right) in ((1, (0, size // 2)), (2, (size // 2, size))):
        h, w = rng.integers(size // 4, size // 2, size=2)
        top = rng.integers(0, size - h)
        x0 = rng.integers(left, right - w + 1)
        truth[top : top + h, x0 : x0 + w] = index
    colours = np.array([COLOURS[name] for name in CLASSES], np.float32)
    image = colours[truth] + rng.normal(0, 6, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def iou(truth: np.ndarray, predicted: np.ndarray, index: int) -> float:
    """IoU of class ``index`` over one or more maps (arrays of equal shape)."""
    a, b = truth == index, predicted == index
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
