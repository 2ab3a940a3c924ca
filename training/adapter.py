"""The trained head as the engine's ``LogitAdapter``: the only way training changes proposals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training.errors import ModelVersionError
from training.filters import FilterCache, FilterSpec
from training.fusion import fuse_logits
from training.head import PixelHead, grid_extent


def class_key(name: str) -> str:
    """Matching key of a class string: its first synonym, stripped and lower-cased."""
    return name.split(";")[0].strip().lower()


@dataclass(frozen=True)
class FusionSettings:
    """ZegFormer-style fusion: ``lam`` weighs learned vs zero-shot, ``gamma`` calibrates seen."""

    lam: float = 2 / 3
    gamma: float = 0.1


class TrainedAdapter:
    """Callable ``adapter(view) -> float32 [C, h, w]`` logits for the engine's ``predict``.

    ``view`` is the engine's ``WorkingView`` (or a :class:`training.views.PixelView`). Classes of
    the view that the head learned (matched by :func:`class_key` against ``class_names``, the
    current project names of the head's class ids) get learned scores; every other class keeps
    its zero-shot score; the two are fused by :func:`training.fusion.fuse_logits`. Rows of classes
    in ``seen_class_ids`` (human-labelled at training time; default: every row) are calibrated
    with ``gamma``; rows learned from generated features (CaGNet) or pseudo-labels are not.
    """

    def __init__(
        self,
        head: PixelHead,
        class_names: Mapping[int, str],
        filter_spec: FilterSpec,
        fusion: FusionSettings = FusionSettings(),
        version_id: str | None = None,
        filter_cache: FilterCache | None = None,
        patch_size: int | None = None,
        seen_class_ids: set[int] | None = None,
    ) -> None:
        self.head = head.eval()
        self.class_names = dict(class_names)
        self.filter_spec = filter_spec
        self.fusion = fusion
        self.version_id = version_id
        self.patch_size = patch_size
        self.seen_class_ids = (
            set(head.spec.class_ids) if seen_class_ids is None else set(seen_class_ids)
        )
        self.filter_cache = filter_cache or FilterCache(filter_spec, max_bytes=256 * 2**20)

    def learned_positions(self, view_classes: list[str]) -> tuple[list[int], list[int]]:
        """(rows of the head, positions in ``view_classes``) of the learned classes present."""
        position = {class_key(name): i for i, name in reversed(list(enumerate(view_classes)))}
        rows, positions = [], []
        for row, class_id in enumerate(self.head.spec.class_ids):
            name = self.class_names.get(class_id)
            if name is not None and class_key(name) in position:
                rows.append(row)
                positions.append(position[class_key(name)])
        return rows, positions

    def head_logits(self, view: Any) -> np.ndarray:
        """The head's logits float32 [K, h, w] over all its learned classes for ``view``."""
        image = np.asarray(view.image)
        filters = self.filter_cache.get(image)
        clip = self._clip_grid(view.features)
        extent = None
        if clip is not None:
            patch = getattr(view, "patch_size", None) or self.patch_size
            extent = grid_extent(tuple(clip.shape[1:]), image.shape[:2], patch)
        with torch.inference_mode():
            logits = self.head.forward_map(torch.from_numpy(filters), clip, extent)
        return logits.numpy()

    def _clip_grid(self, features: np.ndarray | None) -> torch.Tensor | None:
        expected = self.head.spec.clip_channels
        if expected == 0:
            return None
        if features is None:
            raise ModelVersionError(
                "This model version was trained with CLIP features, but no CLIP weights are "
                "loaded: load the same model as for training, or roll back to a version "
                "trained without CLIP weights."
            )
        if features.shape[0] != expected:
            raise ModelVersionError(
                f"This model version was trained on {expected}-dimensional CLIP features, but "
                f"the loaded model gives {features.shape[0]}: load the model it was trained "
                "with, retrain, or roll back."
            )
        return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))

    def __call__(self, view: Any) -> np.ndarray:
        names = list(view.class_names)
        zero_shot = view.zero_shot_logits
        rows, positions = self.learned_positions(names)
        if not rows:
            height, width = np.asarray(view.image).shape[:2]
            if zero_shot is None:
                return np.zeros((len(names), height, width), np.float32)
            return np.asarray(zero_shot, dtype=np.float32)
        if zero_shot is not None and not np.any(zero_shot):
            zero_shot = None
        logits = self.head_logits(view)[rows]
        seen = [self.head.spec.class_ids[row] in self.seen_class_ids for row in rows]
        return fuse_logits(
            logits, positions, zero_shot, len(names), self.fusion.lam, self.fusion.gamma, seen
        )
