"""A folder of odd and broken images, the tiny-model settings, and output-folder comparison."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from annotator.engine.config import EngineConfig
from annotator.engine.testing import TINY_MODEL

CLASSES = ["cat", "tv; monitor", "grass"]
TINY_FLAGS = ["--model", TINY_MODEL, "--pretrained", "none", "--short-side", "32",
              "--window", "0", "--refine", "none", "--templates", "single"]  # fmt: skip
#: The unreadable files of :func:`odd_folder` (relative path -> a word of the reason).
BROKEN = {"truncated.jpg", "empty.png", "text.png"}


def tiny_config() -> EngineConfig:
    """The config :data:`TINY_FLAGS` describe (random tiny ViT, fast)."""
    return EngineConfig(model=TINY_MODEL, pretrained=None, short_side=32, window=0,
                        refine=None, templates=("a photo of a {}.",), preset=None)  # fmt: skip


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour blobs (a random-weights ViT then gives several labels per image)."""
    small = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def odd_folder(root: Path, seed: int = 0) -> Path:
    """Images of every odd kind the CLI meets, plus broken files (:data:`BROKEN`)."""
    rng = np.random.default_rng(seed)
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_scene(rng, 40, 56)).save(root / "a.jpg", quality=90)
    Image.fromarray(_scene(rng, 40, 56)).save(root / "a.png")  # collides with a.jpg
    Image.fromarray(_scene(rng, 48, 32)).convert("RGBA").save(root / "rgba.png")
    deep = (rng.integers(0, 65536, (36, 36)) // 257 * 257).astype(np.uint16)
    Image.fromarray(deep).save(root / "sixteen.png")
    Image.fromarray(_scene(rng, 30, 45)).convert("L").save(root / "sub" / "gray.png")
    Image.fromarray(np.array([[[200, 10, 10]]], np.uint8)).save(root / "sub" / "tiny.png")
    for i in range(3):
        Image.fromarray(_scene(rng, 33 + i, 50)).save(root / "sub" / "deeper" / f"p{i}.png")
    buffer = io.BytesIO()
    Image.fromarray(_scene(rng, 64, 64)).save(buffer, format="JPEG")
    (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("not a picture\n")
    (root / "notes.txt").write_text("ignored: not an image name\n")
    return root


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every PNG and classes.json under ``folder`` (relative posix path -> bytes)."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and (path.suffix == ".png" or path.name == "classes.json")
    }
