"""Scenes painted with a planted palette, and the tiny random ViT segmenter."""

from __future__ import annotations

import numpy as np

from annotator.engine import EngineConfig, create_segmenter
from annotator.engine.segmenter import Segmenter
from annotator.engine.testing import TINY_MODEL

PALETTE = {
    "cat": (230, 30, 30),
    "dog": (30, 30, 230),
    "grass": (30, 200, 30),
    "sky": (240, 240, 60),
}


def painted_scene(height: int = 300, width: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 scene of palette regions and its truth ``[H, W]`` (index into PALETTE)."""
    names = list(PALETTE)
    truth = np.full((height, width), names.index("grass"), np.int64)
    truth[: height // 4] = names.index("sky")
    truth[height // 6 : height * 2 // 3, width // 13 : width * 9 // 20] = names.index("cat")
    truth[height // 3 : height * 14 // 15, width * 11 // 20 : width * 19 // 20] = names.index("dog")
    colours = np.array([PALETTE[name] for name in names], np.uint8)
    return colours[truth], truth


def tiny_segmenter(head: str = "naclip", **settings: object) -> Segmenter:
    config = EngineConfig(model=TINY_MODEL, pretrained=None, head=head, short_side=64, **settings)
    return create_segmenter(config)
