"""The zegformer proposer: class-agnostic segments named by CLIP, fused and calibrated."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from annotator.engine import EngineConfigError
from annotator.engine.proposers import get_proposer, list_proposers
from annotator.engine.proposers.fusion import calibrate, fuse_scores, pixel_scores
from annotator.engine.proposers.grouping import GroupingSettings, group_image, kmeans
from annotator.engine.testing import create_planted_segmenter
from tests.unit.engine.helpers import PALETTE, painted_scene, tiny_segmenter
from tests.unit.engine.test_planted import interior

CLASSES = list(PALETTE)


def test_registry_names_both_proposers_and_rejects_others() -> None:
    assert list_proposers() == ["dense", "zegformer"]
    assert get_proposer("ZegFormer").name == "zegformer"
    with pytest.raises(EngineConfigError, match="choose one of: dense, zegformer"):
        create_planted_segmenter(PALETTE, proposer="maskformer")


@pytest.mark.parametrize("variant", ["img", "seg", "fused"])
@pytest.mark.parametrize("score", ["pool", "crop"])
def test_planted_scene_labelled_by_every_variant(variant: str, score: str) -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(
        PALETTE, proposer="zegformer", zegformer_variant=variant, segment_score=score
    )
    segmenter.set_image(image)
    proposal = segmenter.predict(CLASSES)
    inside = interior(truth, 4)
    assert (proposal.label_map == truth)[inside].mean() >= 0.99
    assert (proposal.label_map == truth).mean() >= 0.99
    segments = proposal.segments
    assert segments.variant == variant
    assert segments.index_map.shape == truth.shape
    assert 4 <= segments.count <= 16
    # every segment is named by the class most of its pixels truly have
    for q in range(segments.count):
        majority = np.bincount(truth[segments.mask(q)], minlength=4).argmax()
        assert segments.top(q)[0][0] == CLASSES[majority]


def test_dense_proposer_is_unchanged_and_has_no_segments() -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE)
    segmenter.set_image(image)
    proposal = segmenter.predict(CLASSES)
    assert proposal.segments is None
    assert (proposal.label_map == truth).mean() >= 0.99


@pytest.mark.parametrize("score", ["pool", "crop"])
def test_tiny_vit_gives_full_size_segments(score: str) -> None:
    segmenter = tiny_segmenter(proposer="zegformer", segment_score=score, segments=8)
    image = np.random.default_rng(3).integers(0, 255, (45, 71, 3), np.uint8)
    segmenter.set_image(image)
    proposal = segmenter.predict(["cat", "dog; puppy", "grass"])
    assert proposal.label_map.shape == (45, 71)
    assert proposal.probabilities.shape[0] == 3
    np.testing.assert_allclose(proposal.probabilities.sum(axis=0), 1.0, rtol=1e-4)
    segments = proposal.segments
    assert 1 <= segments.count <= 8
    assert segments.scores.shape == (segments.count, 3)
    np.testing.assert_allclose(segments.scores.sum(axis=1), 1.0, rtol=1e-4)
    assert set(np.unique(segments.index_map)) == set(range(segments.count))


def test_bad_settings_are_typed_errors() -> None:
    segmenter = create_planted_segmenter(PALETTE, proposer="zegformer", segment_score="box")
    segmenter.set_image(painted_scene()[0])
    with pytest.raises(EngineConfigError, match="choose pool or crop"):
        segmenter.predict(CLASSES)


def test_grouping_without_features_splits_colours_into_parts() -> None:
    image, truth = painted_scene(120, 160)
    settings = GroupingSettings(count=4, position_weight=0.0)
    masks, index = group_image(image, None, 8, settings)
    assert masks.shape == (int(index.max()) + 1, 120, 160)
    np.testing.assert_allclose(masks.sum(dim=0).numpy(), 1.0, rtol=1e-5)
    # 4 colours, each one connected region: one segment per region, pixel-exact inside
    assert index.max() + 1 == 4
    for label in range(4):
        inside = interior(truth, 6) & (truth == label)
        assert len(np.unique(index[inside])) == 1


def test_kmeans_separates_two_blobs() -> None:
    points = torch.cat([torch.zeros(50, 2), torch.ones(50, 2) * 5]) + 0.01 * torch.randn(100, 2)
    assign = kmeans(points, 2, 5, 0)
    assert len(set(assign[:50].tolist())) == 1 and len(set(assign[50:].tolist())) == 1
    assert assign[0] != assign[99]


def test_fusion_equals_the_paper_formulas_by_hand() -> None:
    p_seg = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    p_img = torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.3, 0.6]])
    seen = torch.tensor([True, True, False])
    lam = 2 / 3
    fused = fuse_scores(p_seg, p_img, seen, lam)
    mean0, mean1 = (0.5 + 0.2) / 2, (0.1 + 0.3) / 2
    expected = [
        [0.6**lam * mean0 ** (1 / 3), 0.3**lam * mean0 ** (1 / 3), 0.1 ** (1 / 3) * 0.3**lam],
        [0.2**lam * mean1 ** (1 / 3), 0.2**lam * mean1 ** (1 / 3), 0.6 ** (1 / 3) * 0.6**lam],
    ]
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-6)
    masks = torch.tensor([[[1.0, 0.25]], [[0.0, 0.75]]])  # 2 segments over a 1 x 2 image
    pixel = pixel_scores(fused, masks)
    assert pixel.shape == (3, 1, 2)
    assert math.isclose(
        float(pixel[2, 0, 1]), 0.25 * expected[0][2] + 0.75 * expected[1][2], rel_tol=1e-6
    )
    calibrated = calibrate(pixel, seen, 0.1)
    np.testing.assert_allclose(calibrated[:2].numpy(), pixel[:2].numpy() - 0.1, rtol=1e-6)
    np.testing.assert_allclose(calibrated[2].numpy(), pixel[2].numpy())


def test_no_seen_class_means_every_class_takes_the_unseen_formula() -> None:
    p_seg, p_img = torch.tensor([[0.7, 0.3]]), torch.tensor([[0.4, 0.6]])
    fused = fuse_scores(p_seg, p_img, torch.tensor([False, False]), 0.5)
    np.testing.assert_allclose(fused.numpy(), [[math.sqrt(0.28), math.sqrt(0.18)]], rtol=1e-6)


class _BiasedSegments:
    """A trained segment model whose masks are the true regions and whose learned scores lean
    toward the seen classes (cat, grass, sky): on the dog region it prefers cat (0.6 vs 0.2)."""

    scores = np.array(
        [
            [0.9, 0.05, 0.03, 0.02],
            [0.6, 0.2, 0.1, 0.1],
            [0.05, 0.05, 0.85, 0.05],
            [0.05, 0.05, 0.05, 0.85],
        ],
        np.float32,
    )

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth

    def segment(self, view):  # noqa: ANN001, ANN201 - the engine's SegmentModel protocol
        height, width = view.image.shape[:2]
        truth = cv2.resize(
            self.truth.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        )
        masks = np.stack([(truth == k).astype(np.float32) for k in range(4)])
        return masks, self.scores, np.array([True, False, True, True])


class _Adapter:
    def __init__(self, truth: np.ndarray) -> None:
        self.segment_model = _BiasedSegments(truth)

    def __call__(self, view) -> np.ndarray:  # noqa: ANN001
        return view.zero_shot_logits


def _iou(labels: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(((labels == k) & (truth == k)).sum() / ((labels == k) | (truth == k)).sum())


def test_gamma_raises_unseen_iou_of_a_seen_biased_head() -> None:
    image, truth = painted_scene()
    ious = {}
    for gamma in (0.0, 0.1):
        # a weak CLIP score (logit scale 1), so the biased learned score matters
        segmenter = create_planted_segmenter(
            PALETTE, proposer="zegformer", logit_scale=1.0, calibration_gamma=gamma
        )
        segmenter.set_image(image)
        proposal = segmenter.predict(CLASSES, adapter=_Adapter(truth))
        assert proposal.segments.variant == "fused"
        ious[gamma] = [_iou(proposal.label_map, truth, k) for k in range(4)]
    dog = CLASSES.index("dog")
    assert ious[0.0][dog] < 0.05  # the seen-biased head calls the dog region "cat"
    assert ious[0.1][dog] > 0.95  # gamma 0.1 gives it back to the unseen class
    for seen in (CLASSES.index("grass"), CLASSES.index("sky")):
        assert ious[0.1][seen] > 0.95


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    count=st.integers(1, 8),
    patch=st.sampled_from([4, 8, 16]),
    seed=st.integers(0, 2**16),
)
def test_grouping_partitions_any_image(
    height: int, width: int, count: int, patch: int, seed: int
) -> None:
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)
    masks, index = group_image(image, None, patch, GroupingSettings(count=count))
    segments = int(index.max()) + 1
    assert index.shape == (height, width) and 1 <= segments <= count
    assert set(np.unique(index)) == set(range(segments))
    assert masks.shape == (segments, height, width)
    np.testing.assert_allclose(masks.sum(dim=0).numpy(), 1.0, rtol=1e-5)
