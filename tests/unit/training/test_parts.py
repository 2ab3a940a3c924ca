"""Unit tests of the parts of training that need neither a project nor an engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.errors import JobCancelled
from annotator.progress import run_job
from training.filters import FilterCache, FilterSpec, compute_filter_features
from training.fit import FitSettings, SampleSet, fit_head
from training.fusion import fuse_logits, softmax
from training.head import HeadSpec, PixelHead, grid_extent, sample_clip_features
from training.samples import balanced_pixels, select_pseudo_labels


def test_filter_features_shape_and_response() -> None:
    rng = np.random.default_rng(0)
    image = np.full((40, 50, 3), 120, np.uint8)
    image[:, 25:] = rng.integers(0, 255, (40, 25, 3))  # textured right half
    spec = FilterSpec((1.0, 3.0))
    features = compute_filter_features(image, spec)
    assert features.shape == (spec.num_features, 40, 50) and features.dtype == np.float32
    gradient_fine = features[3 + 3]  # gradient magnitude at sigma 1
    assert gradient_fine[:, 30:].mean() > 20 * gradient_fine[:, :18].mean()


def test_filter_cache_computes_each_image_once() -> None:
    cache = FilterCache(FilterSpec((1.0,)))
    image = np.zeros((16, 16, 3), np.uint8)
    first = cache.get(image)
    assert cache.get(image.copy()) is first and cache.compute_count == 1
    cache.get(image + 1)
    assert cache.compute_count == 2


def _head(clip_channels: int = 6) -> PixelHead:
    torch.manual_seed(0)
    return PixelHead(HeadSpec(5, clip_channels, 8, (3, 7))).eval()


@pytest.mark.parametrize("patch", [None, 4])
def test_map_forward_matches_pixel_forward(patch: int | None) -> None:
    """Projecting the CLIP grid before upsampling equals sampling it per pixel."""
    head = _head()
    filters = torch.randn(5, 10, 13)
    grid = torch.randn(6, 3, 4)
    extent = grid_extent((3, 4), (10, 13), patch)
    with torch.no_grad():
        dense = head.forward_map(filters, grid, extent)
    ys, xs = np.nonzero(np.ones((10, 13), bool))
    clip = sample_clip_features(grid.numpy(), ys, xs, extent)
    with torch.no_grad():
        pixels = head(filters[:, ys, xs].T, torch.from_numpy(clip))
    assert dense.shape == (2, 10, 13)
    np.testing.assert_allclose(dense[:, ys, xs].T.numpy(), pixels.numpy(), atol=1e-5)


def test_grid_extent_follows_engine_padding() -> None:
    assert grid_extent((7, 7), (100, 100), 16) == (112, 112)
    assert grid_extent((7, 7), (100, 100), None) == (100, 100)
    assert grid_extent((3, 3), (100, 100), 16) == (100, 100)  # not a padded grid


def test_add_classes_keeps_old_rows() -> None:
    head = _head(0)
    x = torch.randn(4, 5)
    with torch.no_grad():
        before = head(x)
        head.add_classes((9,))
        after = head(x)
    assert head.spec.class_ids == (3, 7, 9)
    torch.testing.assert_close(after[:, :2], before)


def _two_blobs(n: int = 400) -> SampleSet:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, n)
    filters = (rng.normal(0, 1, (n, 5)) + labels[:, None] * 3.0).astype(np.float32)
    return SampleSet(filters, None, labels, np.ones(n, np.float32))


def test_fit_learns_and_reports_loss() -> None:
    samples = _two_blobs()
    seen: list[dict] = []
    job = fit_head(
        HeadSpec(5, 0, 16, (0, 1)), samples, FitSettings(steps=60, batch_size=128),
        lambda: False, torch.device("cpu"),
    )  # fmt: skip
    head = run_job(job, lambda p: seen.append(p.data))
    with torch.no_grad():
        predicted = head(torch.from_numpy(samples.filters)).argmax(1).numpy()
    assert (predicted == samples.labels).mean() > 0.95
    assert seen[-1]["step"] == 60 and seen[-1]["loss"] < seen[0]["loss"]


def test_fit_stops_when_asked() -> None:
    calls = iter(range(100))
    job = fit_head(
        HeadSpec(5, 0, 8, (0, 1)), _two_blobs(), FitSettings(steps=50),
        lambda: next(calls) >= 5, torch.device("cpu"),
    )  # fmt: skip
    with pytest.raises(JobCancelled, match="previous model version stays active"):
        run_job(job)


def test_fusion_keeps_head_ranking_among_seen_classes() -> None:
    rng = np.random.default_rng(2)
    head_logits = rng.normal(0, 3, (3, 6, 6)).astype(np.float32)
    noisy_zero_shot = rng.normal(0, 40, (3, 6, 6)).astype(np.float32)
    fused = fuse_logits(head_logits, [0, 1, 2], noisy_zero_shot, 3)
    np.testing.assert_array_equal(fused.argmax(0), head_logits.argmax(0))


def test_fusion_lets_zero_shot_name_a_novel_class() -> None:
    head_logits = np.zeros((2, 1, 2), np.float32)
    head_logits[0] = 5.0  # the head is sure: class "a" everywhere
    zero_shot = np.zeros((3, 1, 2), np.float32)
    zero_shot[2, 0, 0] = 20.0  # zero-shot is sure pixel 0 is the novel class
    zero_shot[0, 0, 1] = 20.0  # and that pixel 1 is "a"
    fused = fuse_logits(head_logits, [0, 1], zero_shot, 3)
    assert fused.argmax(0).tolist() == [[2, 0]]
    probabilities = softmax(fused)
    np.testing.assert_allclose(probabilities.sum(0), 1.0, rtol=1e-5)


def test_pseudo_labels_only_above_per_class_threshold() -> None:
    rng = np.random.default_rng(3)
    probabilities = softmax(rng.normal(0, 2, (3, 30, 30)).astype(np.float32))
    targets, thresholds = select_pseudo_labels(probabilities, top_fraction=0.3, min_confidence=0.6)
    predicted, confidence = probabilities.argmax(0), probabilities.max(0)
    chosen = targets >= 0
    assert chosen.any() and not chosen.all()
    np.testing.assert_array_equal(targets[chosen], predicted[chosen])
    assert np.all(confidence[chosen] >= thresholds[targets[chosen]])
    assert np.all(thresholds[np.isfinite(thresholds)] >= 0.6)
    for k in range(3):
        of_class = predicted == k
        # Never more than the top 30 % of a class's pixels, never one below the threshold.
        assert chosen[of_class].sum() <= np.ceil(0.3 * of_class.sum()) + 1
        assert not np.any(of_class & ~chosen & (confidence >= thresholds[k]))


def test_balanced_pixels_caps_each_class_and_skips_unlabelled() -> None:
    targets = np.full((20, 20), -1, np.int64)
    targets[:5] = 0
    targets[5:6, :3] = 4
    ys, xs = balanced_pixels(targets, 10, np.random.default_rng(0))
    values = targets[ys, xs]
    assert (values >= 0).all()
    assert (values == 0).sum() == 10 and (values == 4).sum() == 3


def test_fit_works_when_driven_under_inference_mode() -> None:
    """The GUI's engine worker steps batch jobs inside torch.inference_mode()."""
    job = fit_head(
        HeadSpec(5, 0, 8, (0, 1)), _two_blobs(), FitSettings(steps=20, batch_size=64),
        lambda: False, torch.device("cpu"),
    )  # fmt: skip
    while True:
        with torch.inference_mode():
            try:
                next(job)
            except StopIteration as done:
                head = done.value
                break
            # The job's grad mode never leaks into its caller between steps.
            assert torch.is_inference_mode_enabled()
    assert head.classifier.weight.grad is not None
