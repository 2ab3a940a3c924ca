"""The proof: on unlabelled textured scenes whose colours are random per region, the learned
MaskContrast embedding groups by texture; K-means on the raw features groups by colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotator.progress import run_job
from annotator.project import Project
from training.grouping import GroupConfig, group_folder, load_group_map
from training.grouping.kmeans import matched_miou, overlap_matrix
from training.grouping.testing import GROUP_TEXTURES, write_group_folder

K = len(GROUP_TEXTURES)


def _matched_miou(project, truth: dict[str, np.ndarray]) -> float:
    overlap = np.zeros((K, K), np.int64)
    for relpath, index in truth.items():
        overlap += overlap_matrix(index, load_group_map(project, relpath).astype(np.int64), K, K)
    return matched_miou(overlap)[0]


def test_learned_groups_match_the_hidden_textures_far_better_than_raw_features(
    tmp_path: Path,
) -> None:
    truth = write_group_folder(tmp_path / "scenes", 16, size=64, seed=1)
    with Project.open(tmp_path / "scenes") as project:
        raw = run_job(group_folder(project, None, K, GroupConfig(k=K, size=64, steps=0)))
        raw_miou = _matched_miou(project, truth)
        config = GroupConfig(k=K, size=64, steps=150, lr=0.01)
        learned = run_job(group_folder(project, None, K, config))
        learned_miou = _matched_miou(project, truth)
        assert project.list_classes() == []  # no labels were used
    assert len(raw.groups) == len(learned.groups) == K
    # Measured 0.72 (learned) vs 0.19 (raw) when written; chance for 5 textures is about 0.2.
    assert learned_miou >= 0.6, learned_miou
    assert raw_miou <= 0.35, raw_miou
    assert learned_miou - raw_miou >= 0.3
