"""A generated labelled folder: textured regions per class, some images reviewed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.project import Project

#: Class name -> (base RGB colour, texture): textures differ in frequency and orientation so
#: classes with close colours still need the filter features to be told apart.
CLASSES: dict[str, tuple[tuple[int, int, int], str]] = {
    "grass": ((90, 140, 70), "fine"),
    "road": ((110, 110, 105), "smooth"),
    "brick": ((150, 90, 70), "stripes"),
    "water": ((70, 100, 140), "waves"),
}


def _texture(kind: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """float32 [H, W] texture in about [-1, 1]."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "fine":
        return rng.normal(0, 0.8, size).astype(np.float32)
    if kind == "smooth":
        return rng.normal(0, 0.1, size).astype(np.float32)
    if kind == "stripes":
        return np.sign(np.sin(yy * 0.9)).astype(np.float32) * 0.8
    return np.sin(xx * 0.35 + 2 * np.sin(yy * 0.15)).astype(np.float32) * 0.7


def make_scene(
    rng: np.random.Generator, size: int, class_ids: list[int], palette: list[tuple]
) -> tuple[np.ndarray, np.ndarray]:
    """An image uint8 [S, S, 3] of four quadrants (split lines jittered), and its labels."""
    cy, cx = rng.integers(size // 3, 2 * size // 3, size=2)
    quadrant = np.zeros((size, size), np.int64)
    quadrant[cy:, :cx] = 1
    quadrant[:cy, cx:] = 2
    quadrant[cy:, cx:] = 3
    chosen = rng.choice(len(class_ids), size=4, replace=True)
    index = chosen[quadrant]
    image = np.zeros((size, size, 3), np.float32)
    for k, (colour, kind) in enumerate(palette):
        mask = index == k
        if mask.any():
            tex = _texture(kind, (size, size), rng)
            # Colour jitter per image keeps the problem from being a pure colour lookup.
            base = np.asarray(colour, np.float32) + rng.normal(0, 8, 3)
            image[mask] = base + 40.0 * tex[mask, None]
    labels = np.asarray(class_ids, np.uint8)[index]
    return np.clip(image, 0, 255).astype(np.uint8), labels


def build_project(
    folder: Path, count: int, reviewed: int, size: int = 96, seed: int = 0, names: tuple = ()
) -> Project:
    """A project of ``count`` images; the first ``reviewed`` carry human labels ("reviewed")."""
    names = names or tuple(CLASSES)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    scenes = []
    for i in range(count):
        palette = [CLASSES[n] for n in names]
        image, index = make_scene(rng, size, list(range(len(names))), palette)
        Image.fromarray(image).save(folder / f"img{i:03d}.png")
        scenes.append(index)
    project = Project.open(folder)
    ids = [project.add_class(name).id for name in names]
    lut = np.asarray(ids, np.uint8)
    for i in range(reviewed):
        project.save_labels(f"img{i:03d}.png", lut[scenes[i]], status="reviewed")
    return project


@pytest.fixture
def labelled_project(tmp_path: Path):
    project = build_project(tmp_path / "scenes", count=14, reviewed=10)
    yield project
    project.close()
