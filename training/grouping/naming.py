"""Group statistics, Hungarian matching to labelled classes, and name suggestions.

Once the project has human labels, groups are matched one-to-one to classes by the Hungarian
method on their pixel IoU (``scipy.optimize.linear_sum_assignment``). With CLIP weights loaded,
each group's mean dense CLIP feature is compared with the text embeddings of the project's class
names and a small everyday vocabulary; the closest names are suggested.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from training.grouping.config import NO_GROUP
from training.grouping.features import resize_nearest
from training.grouping.kmeans import hungarian_match, overlap_matrix
from training.grouping.store import GroupInfo, GroupingResult, map_path, read_map

#: Names offered besides the project's classes when CLIP weights can rank them.
VOCABULARY: tuple[str, ...] = (
    "sky", "tree", "grass", "road", "building", "water", "sand", "rock", "wall", "floor",
    "person", "car", "animal", "plant", "field", "snow", "cloud", "metal", "wood", "fabric",
    "soil", "leaf", "brick", "glass", "paper", "food", "mountain", "roof", "fence", "background",
)  # fmt: skip
_SUGGESTIONS = 3


class _Tally:
    """Running per-group counts over the folder (and CLIP feature sums when available)."""

    def __init__(self, k: int, classes: int) -> None:
        self.pixels = np.zeros(k, np.int64)
        self.per_image: list[dict[str, int]] = [{} for _ in range(k)]
        self.overlap = np.zeros((max(classes, 1), k), np.int64)
        self.clip_sums: np.ndarray | None = None

    def add_map(self, relpath: str, groups: np.ndarray, min_share: float) -> None:
        counts = np.bincount(groups[groups != NO_GROUP].ravel(), minlength=len(self.pixels))
        self.pixels += counts[: len(self.pixels)]
        for g in np.flatnonzero(counts[: len(self.pixels)] >= min_share * groups.size):
            self.per_image[g][relpath] = int(counts[g])

    def add_clip(self, clip: np.ndarray, groups: np.ndarray) -> None:
        """``clip`` float32 [D, gh, gw]; ``groups`` uint8 [H, W] resized to the grid."""
        small = resize_nearest(groups, clip.shape[1:]).ravel()
        flat = clip.reshape(clip.shape[0], -1).T
        if self.clip_sums is None:
            self.clip_sums = np.zeros((len(self.pixels), clip.shape[0]), np.float64)
        valid = small != NO_GROUP
        np.add.at(self.clip_sums, small[valid], flat[valid])


def _class_index(project: Any) -> tuple[list[Any], dict[int, int]]:
    classes = project.list_classes()
    return classes, {info.id: n for n, info in enumerate(classes)}


def _add_labels(tally: _Tally, project: Any, relpath: str, groups: np.ndarray, index: dict) -> None:
    labels = project.load_labels(relpath)
    if labels is None or not index:
        return
    lookup = np.full(int(labels.max()) + 1, -1, np.int64)
    for class_id, n in index.items():
        if class_id < len(lookup):
            lookup[class_id] = n
    truth = np.where(labels == project.unlabeled_value, -1, lookup[labels])
    tally.overlap += overlap_matrix(truth, groups.astype(np.int64), *tally.overlap.shape)


def _suggest(tally: _Tally, segmenter: Any, classes: list[Any]) -> list[list[str]]:
    """Names per group, best first (empty without CLIP features)."""
    if tally.clip_sums is None or segmenter is None:
        return [[] for _ in tally.pixels]
    names = [info.name for info in classes] + [v for v in VOCABULARY
             if v not in {info.name.lower() for info in classes}]  # fmt: skip
    prompts = [info.prompt for info in classes] + names[len(classes) :]
    text = segmenter.encode_text(prompts)
    means = tally.clip_sums / np.maximum(
        np.linalg.norm(tally.clip_sums, axis=1, keepdims=True), 1e-9
    )
    order = np.argsort(-(means @ text.T), axis=1)[:, :_SUGGESTIONS]
    return [[names[j] for j in row] for row in order]


def summarise(folder: Any, maps_dir: Path) -> GroupingResult:
    """Read every written map back and build the :class:`GroupingResult`."""
    project, config = folder.project, folder.config
    classes, index = _class_index(project)
    tally = _Tally(config.k, len(classes))
    for i, relpath in enumerate(folder.relpaths):
        groups = read_map(map_path(maps_dir, relpath))
        tally.add_map(relpath, groups, config.min_share)
        _add_labels(tally, project, relpath, groups, index)
        clip = folder.load(i).features.clip if folder.clip else None
        if clip is not None:
            tally.add_clip(clip, groups)
    match = hungarian_match(tally.overlap) if tally.overlap.any() else {}
    names = _suggest(tally, folder.segmenter if folder.clip else None, classes)
    infos = []
    for g in range(config.k):
        matched = classes[match[g]] if g in match else None
        suggested = ([matched.name] if matched else []) + [
            n for n in names[g] if not matched or n != matched.name
        ]
        per_image = dict(sorted(tally.per_image[g].items(), key=lambda kv: -kv[1]))
        infos.append(GroupInfo(g, int(tally.pixels[g]), list(per_image), per_image,
                               suggested, matched.id if matched else None))  # fmt: skip
    return GroupingResult(config.k, infos, list(folder.relpaths), asdict(config))
