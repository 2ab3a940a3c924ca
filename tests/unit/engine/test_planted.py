"""The real pipeline with planted encoders must label painted regions with their names."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from annotator.engine import WorkingView
from annotator.engine.testing import create_planted_segmenter
from tests.unit.engine.helpers import PALETTE, painted_scene

CLASSES = list(PALETTE)


def accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    return float((labels == truth).mean())


def interior(truth: np.ndarray, margin: int) -> np.ndarray:
    """Pixels at least ``margin`` pixels away from any region boundary of ``truth``."""
    inside = np.zeros(truth.shape, bool)
    for label in np.unique(truth):
        inside |= ndimage.binary_erosion(truth == label, iterations=margin, border_value=1)
    return inside


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"window": 224, "stride": 112},
        {"window": 96, "stride": 48},
        {"max_tokens": 256},  # too many patches -> automatic windows
    ],
    ids=["whole", "slide-224", "slide-96", "auto-windows"],
)
def test_painted_regions_come_back_labelled(settings: dict) -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE, **settings)
    segmenter.set_image(image)
    proposal = segmenter.predict(CLASSES)
    assert proposal.label_map.shape == truth.shape
    assert proposal.label_map.dtype == np.uint8
    assert accuracy(proposal.label_map, truth) >= 0.99
    assert proposal.class_names == CLASSES
    assert proposal.background_index is None


def test_odd_sizes_and_extreme_aspect_ratio() -> None:
    segmenter = create_planted_segmenter(PALETTE, short_side=96)
    image, truth = painted_scene(97, 1501)
    segmenter.set_image(image)
    proposal = segmenter.predict(CLASSES)
    assert proposal.label_map.shape == (97, 1501)
    inside = interior(truth, 10)
    assert (proposal.label_map == truth)[inside].all()
    assert accuracy(proposal.label_map, truth) >= 0.95


def test_class_order_and_synonyms_follow_the_query() -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE)
    segmenter.set_image(image)
    query = ["dog; hound", "sky", "kitten; cat", "grass"]
    proposal = segmenter.predict(query)
    remap = np.array([2, 0, 3, 1])  # truth index (cat, dog, grass, sky) -> query index
    assert accuracy(proposal.label_map, remap[truth]) >= 0.99
    assert proposal.class_names == query


def test_background_threshold_marks_unnamed_regions() -> None:
    image, truth = painted_scene()
    # No refinement: PAMR averages the logits that bleed over a region's edge across the whole
    # flat unnamed region, which lifts a two-class probability just above 0.6 there.
    segmenter = create_planted_segmenter(PALETTE, background_threshold=0.6, refine=None)
    segmenter.set_image(image)
    proposal = segmenter.predict(["cat", "dog"])  # grass and sky are not asked for
    expected = np.where(truth == 0, 0, np.where(truth == 1, 1, 2))
    assert proposal.background_index == 2
    # Named regions bleed up to one patch into unnamed ones (a mixed patch is still most like
    # its named part); away from the edges the labels must be exact.
    inside = interior(truth, 12)
    assert (proposal.label_map == expected)[inside].all()
    assert accuracy(proposal.label_map, expected) >= 0.9


def test_probabilities_and_confidence_are_consistent() -> None:
    image, _ = painted_scene()
    segmenter = create_planted_segmenter(PALETTE)
    segmenter.set_image(image)
    proposal = segmenter.predict(CLASSES)
    probs = proposal.probabilities
    assert probs.dtype == np.float32 and probs.shape[0] == 4
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-4)
    assert proposal.confidence.dtype == np.float32
    assert proposal.confidence.min() >= 0.0 and proposal.confidence.max() <= 1.0
    assert proposal.mean_confidence > 0.9


def test_requery_with_new_names_does_not_reencode() -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE)
    encoder = segmenter.backbone.image_encoder
    segmenter.set_image(image)
    segmenter.predict(["cat", "dog"])
    calls = encoder.calls
    segmenter.set_image(image.copy())  # same content, new array
    renamed = segmenter.predict(["grass", "sky", "cat", "dog"])
    assert encoder.calls == calls
    assert segmenter.encode_count == 1
    assert accuracy(renamed.label_map, np.array([2, 3, 0, 1])[truth]) >= 0.99


def test_text_embeddings_are_cached_per_name() -> None:
    segmenter = create_planted_segmenter(PALETTE)
    text = segmenter.backbone.text_encoder
    first = segmenter.encode_text(["cat", "tv; dog"])
    calls = text.calls
    again = segmenter.encode_text(["dog", "cat"])
    assert text.calls == calls
    np.testing.assert_allclose(again[1], first[0])
    assert first.shape == (2, len(PALETTE) + 2)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)


def test_feature_cache_is_bounded() -> None:
    segmenter = create_planted_segmenter(PALETTE, feature_cache_mb=1)
    rng = np.random.default_rng(0)
    for _ in range(4):
        segmenter.set_image(rng.integers(0, 255, (448, 448, 3), np.uint8))
    assert segmenter._cache.used_bytes <= 1 << 20 or len(segmenter._cache) == 1
    assert segmenter.encode_count == 4


def test_pamr_refinement_keeps_planted_labels() -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE, refine="pamr")
    segmenter.set_image(image)
    proposal = segmenter.predict(CLASSES)
    assert accuracy(proposal.label_map, truth) >= 0.99
    np.testing.assert_allclose(proposal.probabilities.sum(axis=0), 1.0, atol=1e-4)


def test_pamr_snaps_coarse_masks_to_colour_edges() -> None:
    palette = {"a": (200, 50, 50), "b": (50, 50, 200)}
    yy, xx = np.mgrid[:448, :448]
    truth = ((xx - 224) ** 2 + (yy - 224) ** 2 < 120**2).astype(np.int64)
    image = np.array([palette["a"], palette["b"]], np.uint8)[truth]

    def coarse(view: WorkingView) -> np.ndarray:
        """Logits of the disc seen through a 32-pixel grid: blurry where the edge is sharp."""
        disc = (view.image[..., 2] > 125).astype(np.float32)
        h, w = disc.shape
        small = cv2.resize(disc, (w // 32, h // 32), interpolation=cv2.INTER_AREA)
        blurry = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.stack([(1 - blurry) * 8, blurry * 8]).astype(np.float32)

    results = {}
    for refine in (None, "pamr"):
        segmenter = create_planted_segmenter(palette, refine=refine)
        segmenter.set_image(image)
        results[refine] = accuracy(segmenter.predict(["a", "b"], adapter=coarse).label_map, truth)
    assert results[None] < 0.995
    assert results["pamr"] >= 0.999
