"""Small image folders for the project-store tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, width: int = 32, height: int = 24, seed: int = 0) -> Path:
    """A random RGB image (distinct content per seed, so content hashes differ)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """``a.png``, ``b.jpg`` and ``sub/c.png`` (32 x 24 each)."""
    root = tmp_path / "images"
    for seed, name in enumerate(("a.png", "b.jpg", "sub/c.png")):
        write_image(root / name, seed=seed)
    return root


@pytest.fixture
def make_image():  # noqa: ANN201 - returns write_image
    """The :func:`write_image` helper, for tests that add files to a folder."""
    return write_image
