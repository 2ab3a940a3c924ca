"""A test world for the generative step: planted encoders whose image features relate to the text
embeddings by a fixed rotation that zero-shot does not know, but the seen classes reveal.

Nine classes sit on a 3 x 3 grid of attributes (u, v) in {-1, 0, 1}^2; a class's colour is
``(0.5 + 0.25 u, 0.45, 0.5 + 0.25 v)`` (RGB in [0, 1]) and its dense image feature the
direction of ``(u, v, 1, 0, ..., 0)`` in 8 dimensions (through the planted vote encoder). Its text
embedding is that direction turned by a fixed random rotation ``Q``: cosine zero-shot therefore
names classes wrongly, while a generator trained on seen classes can learn ``Q``'s inverse and
produce the features of an unseen class from its name. With ``random_text`` the text embeddings
are unrelated random directions (a control: nothing can transfer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from annotator.engine.testing import PlantedImageEncoder, PlantedTextEncoder

#: Class name -> attributes (u, v).
WORLD_CLASSES: dict[str, tuple[int, int]] = {
    f"{row}{col}": (u, v)
    for row, u in zip(("low", "mid", "high"), (-1, 0, 1), strict=True)
    for col, v in zip(("ash", "bay", "cob"), (-1, 0, 1), strict=True)
}
#: Classes the world's training images never label (inside the seen classes' attribute hull).
WORLD_UNSEEN: tuple[str, ...] = ("midbay", "highbay")
_DIM = 8


def world_colour(name: str) -> tuple[float, float, float]:
    u, v = WORLD_CLASSES[name]
    return (0.5 + 0.25 * u, 0.45, 0.5 + 0.25 * v)


def _directions() -> Tensor:
    """[K, D] unit image-feature directions of the classes, in WORLD_CLASSES order."""
    rows = torch.zeros(len(WORLD_CLASSES), _DIM)
    for k, (u, v) in enumerate(WORLD_CLASSES.values()):
        rows[k, :3] = torch.tensor([float(u), float(v), 1.0])
    return torch.nn.functional.normalize(rows, dim=1)


def _rotation(seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(_DIM, _DIM, generator=generator))
    return q


class _WorldImageEncoder(nn.Module):
    """Planted palette votes [B, K + 2, gh, gw] -> class directions [B, D, gh, gw]."""

    def __init__(self, patch_size: int) -> None:
        super().__init__()
        palette = torch.tensor([world_colour(n) for n in WORLD_CLASSES], dtype=torch.float32)
        self.votes = PlantedImageEncoder(palette, patch_size)
        mixing = torch.zeros(_DIM, len(WORLD_CLASSES) + 2)
        mixing[:, : len(WORLD_CLASSES)] = _directions().T
        mixing[3, len(WORLD_CLASSES)] = 1.0  # no palette colour: an axis of its own
        self.register_buffer("mixing", mixing)
        self.patch_size = patch_size

    def forward(self, pixels: Tensor) -> Tensor:
        return torch.einsum("dk,bkhw->bdhw", self.mixing, self.votes(pixels))


class _WorldTextEncoder:
    """Prompts -> [P, D]: the named class's direction turned by Q (or a random direction)."""

    def __init__(self, random_text: bool, seed: int) -> None:
        self.names = PlantedTextEncoder(list(WORLD_CLASSES))
        if random_text:
            generator = torch.Generator().manual_seed(seed + 1)
            table = torch.randn(len(WORLD_CLASSES) + 1, _DIM, generator=generator)
        else:
            table = torch.cat([_directions(), torch.eye(_DIM)[3:4]]) @ _rotation(seed).T
        self.table = torch.nn.functional.normalize(table, dim=1)

    def __call__(self, prompts: list[str]) -> Tensor:
        return self.names(prompts)[:, : len(WORLD_CLASSES) + 1] @ self.table


def create_world_segmenter(random_text: bool = False, seed: int = 3, **config: Any) -> Any:
    """A real ``Segmenter`` over the world's encoders; ``config`` sets ``EngineConfig``."""
    from annotator.engine.backbone import Backbone
    from annotator.engine.config import EngineConfig
    from annotator.engine.devices import select_device, select_dtype
    from annotator.engine.segmenter import Segmenter

    settings = EngineConfig(model="planted-world", pretrained=None, **config)
    patch = 8
    backbone = Backbone(
        image_encoder=_WorldImageEncoder(patch), text_encoder=_WorldTextEncoder(random_text, seed),
        patch_size=patch, embed_dim=_DIM, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        key=f"planted-world|random={random_text}|seed={seed}",
    )  # fmt: skip
    device = select_device(settings.device)
    backbone.to(device)
    return Segmenter(settings, backbone, device, select_dtype(settings.precision, device))


def world_scene(
    rng: np.random.Generator, size: int, include: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [S, S, 3], labels int64 [S, S] index into WORLD_CLASSES): four quadrants
    (jittered split lines) of distinct random classes (one of them ``include`` if given), flat
    colour plus noise."""
    cy, cx = rng.integers(size // 3, 2 * size // 3, size=2)
    quadrant = np.zeros((size, size), np.int64)
    quadrant[cy:, :cx], quadrant[:cy, cx:], quadrant[cy:, cx:] = 1, 2, 3
    chosen = rng.choice(len(WORLD_CLASSES), size=4, replace=False)
    if include is not None and include not in chosen:
        chosen[rng.integers(4)] = include
    index = chosen[quadrant]
    colours = np.asarray([world_colour(n) for n in WORLD_CLASSES], np.float32) * 255.0
    image = colours[index] + rng.normal(0, 4, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8), index


def build_world_project(
    folder: str | Path, train: int, holdout: int, unlabelled: int, size: int = 64, seed: int = 0
) -> tuple[Any, list[str]]:
    """A writable ``Project`` of world scenes: ``train`` images labelled (status "edited") for
    every class but :data:`WORLD_UNSEEN` (those pixels stay unlabelled), ``holdout`` images
    labelled completely (the ground truth to score with), ``unlabelled`` images with no labels,
    each showing one of the unseen classes (what self-training can learn from).
    Returns (project, held-out relative paths)."""
    from PIL import Image

    from annotator.project import Project

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenes = {}
    order = list(WORLD_CLASSES)
    for i in range(train + holdout + unlabelled):
        include = order.index(WORLD_UNSEEN[i % len(WORLD_UNSEEN)]) if i >= train + holdout else None
        image, index = world_scene(rng, size, include)
        Image.fromarray(image).save(folder / f"w{i:03d}.png")
        scenes[f"w{i:03d}.png"] = index
    project = Project.open(folder)
    ids = np.asarray([project.add_class(name).id for name in WORLD_CLASSES], np.int64)
    unseen = np.isin(np.asarray(list(WORLD_CLASSES)), WORLD_UNSEEN)
    relpaths = sorted(scenes)
    for position, relpath in enumerate(relpaths[: train + holdout]):
        index = scenes[relpath]
        labels = ids[index]
        if position < train:
            labels = np.where(unseen[index], project.unlabeled_value, labels)
        project.save_labels(relpath, labels.astype(project.label_dtype), status="edited")
    return project, relpaths[train : train + holdout]
