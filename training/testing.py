"""A generated labelled data set for tests and benchmarks: textured regions per class.

Each class has a base colour and a texture (fine noise, smooth, stripes, waves); an image is four
quadrants whose split lines are jittered, each quadrant one random class, with per-image colour
jitter so that colour alone is not a lookup table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Class name -> (base RGB colour, texture kind).
TEXTURED_CLASSES: dict[str, tuple[tuple[int, int, int], str]] = {
    "grass": ((90, 140, 70), "fine"),
    "road": ((110, 110, 105), "smooth"),
    "brick": ((150, 90, 70), "stripes"),
    "water": ((70, 100, 140), "waves"),
}


def _texture(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """float32 [H, W] texture in about [-1, 1]."""
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
    if kind == "fine":
        return rng.normal(0, 0.8, size).astype(np.float32)
    if kind == "smooth":
        return rng.normal(0, 0.1, size).astype(np.float32)
    if kind == "stripes":
        return np.sign(np.sin(yy * 0.9)).astype(np.float32) * 0.8
    return np.sin(xx * 0.35 + 2 * np.sin(yy * 0.15)).astype(np.float32) * 0.7


def make_textured_scene(
    rng: np.random.Generator, size: int, names: tuple[str, ...] = tuple(TEXTURED_CLASSES)
) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [S, S, 3], labels int64 [S, S] index into ``names``)."""
    cy, cx = rng.integers(size // 3, 2 * size // 3, size=2)
    quadrant = np.zeros((size, size), np.int64)
    quadrant[cy:, :cx], quadrant[:cy, cx:], quadrant[cy:, cx:] = 1, 2, 3
    index = rng.choice(len(names), size=4, replace=True)[quadrant]
    image = np.zeros((size, size, 3), np.float32)
    for k, name in enumerate(names):
        mask = index == k
        if mask.any():
            colour, kind = TEXTURED_CLASSES[name]
            texture = _texture(kind, (size, size), rng)
            base = np.asarray(colour, np.float32) + rng.normal(0, 8, 3)
            image[mask] = base + 40.0 * texture[mask, None]
    return np.clip(image, 0, 255).astype(np.uint8), index


def build_textured_project(
    folder: str | Path,
    count: int,
    reviewed: int,
    size: int = 96,
    seed: int = 0,
    names: tuple[str, ...] = tuple(TEXTURED_CLASSES),
) -> Any:
    """Write ``count`` PNG scenes to ``folder`` and open it as a writable ``Project`` whose
    classes are ``names``; the first ``reviewed`` images carry their labels as "reviewed"."""
    from PIL import Image

    from annotator.project import Project

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(count):
        image, index = make_textured_scene(rng, size, names)
        Image.fromarray(image).save(folder / f"img{i:03d}.png")
        scenes.append(index)
    project = Project.open(folder)
    ids = np.asarray([project.add_class(name).id for name in names], np.uint8)
    for i in range(reviewed):
        project.save_labels(f"img{i:03d}.png", ids[scenes[i]], status="reviewed")
    return project
