"""Generated unlabelled folders whose right grouping is known: textured scenes, random colours.

Each group is a *texture* (flat, fine grain, coarse blobs, stripes, checks); every region gets a
random colour, so colour says nothing about the group across the folder. Per-pixel features that
mostly encode colour cluster the folder by colour; an embedding that learned to ignore colour
(MaskContrast's augmented views) clusters it by texture.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

#: The hidden groups of :func:`make_group_scene`, in truth-index order.
GROUP_TEXTURES: tuple[str, ...] = ("flat", "grain", "blobs", "stripes", "checks")


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [S, S] texture in about [-1, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "flat":
        return rng.normal(0, 0.03, (size, size)).astype(np.float32)
    if kind == "grain":
        return rng.normal(0, 0.7, (size, size)).astype(np.float32)
    if kind == "blobs":
        noise = rng.normal(0, 1, (size, size)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigmaX=size / 24)
        return np.tanh(3 * blurred / (blurred.std() + 1e-6)).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = np.cos(angle) * xx + np.sin(angle) * yy
    if kind == "stripes":
        return np.sign(np.sin(along * 2 * np.pi / max(6.0, size / 8))).astype(np.float32)
    across = -np.sin(angle) * xx + np.cos(angle) * yy
    period = max(12.0, size / 4)
    checks = np.sin(along * 2 * np.pi / period) * np.sin(across * 2 * np.pi / period)
    return np.sign(checks).astype(np.float32) * 0.8


def _layout(rng: np.random.Generator, size: int, regions: int) -> np.ndarray:
    """int64 [S, S] Voronoi cell index (0..regions-1) of jittered random seeds."""
    seeds = rng.uniform(0, size, (regions, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    dist = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    return np.argmin(dist, axis=0)


def make_group_scene(
    rng: np.random.Generator, size: int, regions: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [S, S, 3] RGB, truth int64 [S, S] index into :data:`GROUP_TEXTURES`)."""
    cells = _layout(rng, size, regions)
    kinds = rng.choice(len(GROUP_TEXTURES), size=regions, replace=True)
    truth = kinds[cells]
    image = np.zeros((size, size, 3), np.float32)
    for cell in range(regions):
        mask = cells == cell
        texture = _texture(GROUP_TEXTURES[kinds[cell]], size, rng)
        colour = rng.uniform(50, 205, 3).astype(np.float32)
        image[mask] = colour + 45.0 * texture[mask, None]
    return np.clip(image, 0, 255).astype(np.uint8), truth


def write_group_folder(
    folder: str | Path, count: int, size: int = 96, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write ``count`` scenes as PNGs under ``folder`` (some in a subfolder); return the hidden
    truth per relative path (int64 [S, S] index into :data:`GROUP_TEXTURES`)."""
    from PIL import Image

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    truth: dict[str, np.ndarray] = {}
    for i in range(count):
        image, index = make_group_scene(rng, size)
        relpath = f"part{i % 2}/scene{i:04d}.png"
        (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / relpath)
        truth[relpath] = index
    return truth
