"""The segments a zegformer proposal carries: what the GUI outlines and the CLI writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SegmentSet:
    """Class-agnostic segments of one image and their class scores.

    ``index_map``: int16 ``[H, W]`` at the image's original size, each pixel the index of its
    segment (0..N-1). ``scores``: float32 ``[N, C]`` per-segment class scores the labels were
    computed from (the chosen variant, calibrated: seen classes minus gamma). ``class_names``:
    the C class strings. ``labels``: int ``[N]`` best class per segment. ``variant``: "img",
    "seg" or "fused"; ``seen``: bool ``[C]``.
    """

    index_map: np.ndarray
    scores: np.ndarray
    class_names: list[str]
    variant: str
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def count(self) -> int:
        return int(self.scores.shape[0])

    @property
    def labels(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    def top(self, segment: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best ``(class name, score)`` of ``segment``, best first."""
        row = self.scores[segment]
        order = np.argsort(-row, kind="stable")[:k]
        return [(self.class_names[i], float(row[i])) for i in order]

    def segment_at(self, row: int, col: int) -> int | None:
        """Segment index under original-image pixel ``(row, col)``, or None outside."""
        height, width = self.index_map.shape
        if not (0 <= row < height and 0 <= col < width):
            return None
        return int(self.index_map[row, col])

    def mask(self, segment: int) -> np.ndarray:
        """bool ``[H, W]``: the pixels of ``segment``."""
        return self.index_map == segment

    def to_json(self) -> dict[str, Any]:
        """``{"variant", "classes", "segments": [{"index", "area", "label", "top": [...],
        "scores": [C floats]}]}`` -- the document ``annotator propose`` writes."""
        areas = np.bincount(self.index_map.ravel().astype(np.int64), minlength=self.count)
        segments = [
            {
                "index": q,
                "area": int(areas[q]),
                "label": int(self.labels[q]),
                "top": [{"name": n, "score": round(s, 6)} for n, s in self.top(q)],
                "scores": [round(float(v), 6) for v in self.scores[q]],
            }
            for q in range(self.count)
        ]
        return {"variant": self.variant, "classes": list(self.class_names), "segments": segments}
