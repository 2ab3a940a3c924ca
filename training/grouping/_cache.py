"""Per-image cache of grouping inputs in ``<sidecar>/grouping/cache`` (resumable, bounded RAM).

One ``.npz`` per image holds its grouping-resolution image, filter features (float16), CLIP
features (float16, engine grid) and mask proposals. Keys follow the file's size and mtime, so an
edited image is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from training.grouping.features import ImageFeatures
from training.grouping.proposals import MaskProposals


class CachedImage:
    """Features and proposals of one image (see :class:`ImageFeatures`, :class:`MaskProposals`)."""

    def __init__(self, features: ImageFeatures, proposals: MaskProposals) -> None:
        self.features = features
        self.proposals = proposals


def grouping_dir(project: Any) -> Path:
    """``<sidecar>/grouping``: everything this package stores for a project."""
    return Path(project.sidecar) / "grouping"


def cache_key(project: Any, relpath: str, size: int, clip: bool) -> str:
    path = Path(project.image_path(relpath))
    stat = os.stat(path)
    blob = f"{relpath}|{stat.st_size}|{stat.st_mtime_ns}|{size}|{int(clip)}"
    return hashlib.sha1(blob.encode()).hexdigest()


def _cache_path(project: Any, key: str) -> Path:
    return grouping_dir(project) / "cache" / key[:2] / f"{key}.npz"


def save_cached(project: Any, key: str, item: CachedImage) -> None:
    path = _cache_path(project, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "image": item.features.image,
        "filters": item.features.filters.astype(np.float16),
        "original_size": np.asarray(item.features.original_size, np.int64),
        "masks": item.proposals.masks,
        "foreground": item.proposals.foreground,
    }
    if item.features.clip is not None:
        arrays["clip"] = item.features.clip.astype(np.float16)
    partial = path.with_suffix(".tmp.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def load_cached(project: Any, key: str) -> CachedImage | None:
    path = _cache_path(project, key)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            clip = data["clip"].astype(np.float32) if "clip" in data.files else None
            features = ImageFeatures(
                data["image"], data["filters"].astype(np.float32), clip,
                tuple(int(v) for v in data["original_size"]),
            )  # fmt: skip
            return CachedImage(features, MaskProposals(data["masks"], data["foreground"]))
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is recomputed
