"""A small labelled project for the import/export tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.project import UNLABELED_U8, Project

#: Relative path -> (width, height) of the test images.
IMAGES = {"a.png": (40, 30), "b.jpg": (36, 28), "sub/c.png": (40, 30), "sub/d.tif": (24, 20)}


def random_labels(rng: np.random.Generator, shape: tuple[int, int], ids: list[int]) -> np.ndarray:
    """[H, W] uint8 label map of blocky random regions of ``ids`` and unlabeled."""
    height, width = shape
    coarse = rng.choice([*ids, UNLABELED_U8], size=(height // 4 + 1, width // 4 + 1))
    labels = np.kron(coarse, np.ones((4, 4), np.int64))[:height, :width]
    noise = rng.random(shape) < 0.05  # single pixels too: regions of one pixel must survive
    labels[noise] = rng.choice([*ids, UNLABELED_U8], size=int(noise.sum()))
    return labels.astype(np.uint8)


@pytest.fixture
def labelled(tmp_path: Path) -> Iterator[tuple[Project, dict[str, np.ndarray]]]:
    """A project with classes road/car/tree (car deleted later ids stay sparse) and labels on
    every image; yields the open project and the label maps it holds."""
    rng = np.random.default_rng(1)
    root = tmp_path / "project"
    for relpath, (width, height) in IMAGES.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        ys, xs = np.mgrid[0:height, 0:width]  # smooth, so JPEG copies stay close to the source
        base = rng.integers(0, 128, 3)
        pixels = (base + np.stack([xs * 3, ys * 3, xs + ys], axis=2)).astype(np.uint8)
        Image.fromarray(pixels).save(root / relpath)
    project = Project.open(root)
    road, gone, car, tree = (project.add_class(n) for n in ("road", "gone", "car", "tree"))
    project.delete_class(gone.id)  # class ids are now sparse: 0, 2, 3
    maps = {}
    for relpath, (width, height) in IMAGES.items():
        maps[relpath] = random_labels(rng, (height, width), [road.id, car.id, tree.id])
        project.save_labels(relpath, maps[relpath])
    yield project, maps
    project.close()


def open_copy(tmp_path: Path, name: str = "again") -> Project:
    """A fresh project over the same images as ``labelled`` (for import round trips)."""
    import shutil

    target = tmp_path / name
    shutil.copytree(tmp_path / "project", target, ignore=shutil.ignore_patterns(".annotator"))
    return Project.open(target)


@pytest.fixture
def fresh_copy(tmp_path: Path):  # noqa: ANN201 - returns open_copy bound to tmp_path
    return lambda name="again": open_copy(tmp_path, name)
