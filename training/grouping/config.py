"""Settings of the folder grouping job."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

#: Group ids are uint8 map values; 255 means "no group".
NO_GROUP = 255
MAX_GROUPS = 254


@dataclass(frozen=True)
class GroupConfig:
    """``k`` groups; ``size``: grouping resolution (long side, pixels); ``steps``: embedding-head
    training steps (0 = K-means on the standardised raw features, no head); ``batch`` images of
    ``crop`` x ``crop`` pixels per step; ``dim``, ``temperature``, ``momentum``, ``bank``: the
    MaskContrast embedding, softmax temperature, key-head momentum and memory-bank size;
    ``pixels_per_image`` sampled per image for K-means, ``kmeans_epochs`` streaming passes;
    ``min_share``: smallest fraction of an image a group must cover to count as in it."""

    k: int = 8
    size: int = 128
    steps: int = 150
    batch: int = 8
    crop: int = 48
    dim: int = 32
    temperature: float = 0.5
    momentum: float = 0.99
    bank: int = 512
    lr: float = 1e-2
    mask_weight: float = 1.0
    pixels_per_image: int = 512
    kmeans_epochs: int = 2
    min_share: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= MAX_GROUPS:
            raise ValueError(f"k must be between 1 and {MAX_GROUPS}, got {self.k}")
        if self.size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {self.size}")
        if self.steps < 0 or self.batch < 1 or self.crop < 8:
            raise ValueError("steps must be >= 0, batch >= 1 and crop >= 8")

    def head_fingerprint(self, images: list[str], clip: bool) -> str:
        """A digest of what the trained head depends on (not ``k``): re-running with another K
        reuses the head."""
        settings = {key: value for key, value in asdict(self).items() if key != "k"}
        for key in ("pixels_per_image", "kmeans_epochs", "min_share"):
            settings.pop(key)
        blob = json.dumps({"settings": settings, "images": images, "clip": clip}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]
