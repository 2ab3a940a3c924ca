"""Parts of the grouping: mask proposals, MaskContrast losses, mini-batch K-means, matching."""

from __future__ import annotations

import numpy as np
import torch

from training.grouping.features import compute_image_features
from training.grouping.head import contrastive_loss, mask_prototypes
from training.grouping.kmeans import (
    MiniBatchKMeans,
    Reservoir,
    kmeans_plus_plus,
    matched_miou,
    nearest,
    overlap_matrix,
)
from training.grouping.proposals import NO_MASK, add_human_segments, propose_masks


def _two_region_image() -> tuple[np.ndarray, np.ndarray]:
    """Left third flat blue, the rest noisy orange (uint8 [48, 60, 3]); truth bool [48, 60]."""
    rng = np.random.default_rng(0)
    image = np.empty((48, 60, 3), np.float32)
    image[:, :20] = (40, 60, 200)
    image[:, 20:] = np.array((220, 140, 30)) + rng.normal(0, 25, (48, 40, 1))
    truth = np.zeros((48, 60), bool)
    truth[:, 20:] = True
    return np.clip(image, 0, 255).astype(np.uint8), truth


def _propose(image: np.ndarray):
    return propose_masks(compute_image_features(image, None, 64).filters, image)


def test_proposals_split_along_the_region_edge() -> None:
    image, truth = _two_region_image()
    proposals = _propose(image)
    for region in (truth, ~truth):
        ids, counts = np.unique(proposals.masks[region], return_counts=True)
        best = ids[np.argmax(counts)]
        assert best != NO_MASK
        mask = proposals.masks == best
        iou = (mask & region).sum() / (mask | region).sum()
        assert iou > 0.9, iou


def test_human_segments_replace_the_proposals_they_cover() -> None:
    image, truth = _two_region_image()
    proposals = _propose(image)
    labels = np.full(truth.shape, 255, np.uint8)
    labels[:10, :30] = 7  # one human segment across both regions
    merged = add_human_segments(proposals, labels, 255)
    human = merged.masks[:10, :30]
    assert len(np.unique(human)) == 1 and human[0, 0] != NO_MASK
    assert not np.isin(merged.masks[10:], np.unique(human)).any()


def test_prototypes_are_the_normalised_mask_means() -> None:
    keys = torch.nn.functional.normalize(torch.randn(2, 4, 3, 3), dim=1)
    masks = torch.full((2, 3, 3), -1, dtype=torch.long)
    masks[0, :2] = 0
    masks[1, 1:] = 1
    prototypes, present = mask_prototypes(keys, masks)
    expected = keys[1, :, 1:].reshape(4, -1).mean(1)
    assert present.tolist() == [True, True]
    assert torch.allclose(prototypes[1], expected / expected.norm(), atol=1e-6)


def test_contrastive_loss_rewards_pixels_at_their_own_prototype() -> None:
    prototypes = torch.eye(3)
    masks = torch.tensor([[[0, 1, 2]]])
    generator = torch.Generator().manual_seed(0)
    bank = torch.nn.functional.normalize(torch.randn(8, 3, generator=generator), dim=1)
    right = prototypes.T.reshape(1, 3, 1, 3)  # pixel i embedded at prototype i
    wrong = prototypes[[1, 2, 0]].T.reshape(1, 3, 1, 3)
    good = contrastive_loss(right, masks, prototypes, bank, 0.5, 100, generator)
    bad = contrastive_loss(wrong, masks, prototypes, bank, 0.5, 100, generator)
    assert good < bad - 1.0


def test_minibatch_kmeans_finds_planted_clusters_with_a_bounded_sample() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [5, 5], [-5, 5]], np.float32)
    reservoir = Reservoir(300, rng)
    batches = []
    for _ in range(40):
        truth = rng.integers(0, 3, 200)
        batches.append((centres[truth] + rng.normal(0, 0.5, (200, 2)).astype(np.float32), truth))
        reservoir.add(batches[-1][0])
    assert len(reservoir.sample()) == 300  # bounded, though 8000 rows went in
    kmeans = MiniBatchKMeans(kmeans_plus_plus(reservoir.sample(), 3, rng))
    for points, _ in batches:
        kmeans.update(points)
    overlap = sum(overlap_matrix(t, nearest(p, kmeans.centres), 3, 3) for p, t in batches)
    assert matched_miou(overlap)[0] > 0.97


def test_matched_miou_is_invariant_to_group_numbering() -> None:
    truth = np.array([[0, 0, 1, 1, 2, 2]])
    assert matched_miou(overlap_matrix(truth, (truth + 1) % 3, 3, 3))[0] == 1.0
    merged = np.array([[0, 0, 0, 0, 1, 1]])  # classes 0 and 1 in one group: 1 scores 0
    score, ious = matched_miou(overlap_matrix(truth, merged, 3, 3))
    assert sorted(ious) == [0.0, 0.5, 1.0] and abs(score - 0.5) < 1e-9
