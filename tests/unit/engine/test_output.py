"""Full-resolution labels are exact bilinear upsampling, computed band by band."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from annotator.engine.output import best_class, full_resolution_labels, label_dtype


def test_banded_upsampling_equals_one_interpolation() -> None:
    probs = torch.softmax(torch.randn(3, 17, 23, generator=torch.Generator().manual_seed(0)), dim=0)
    labels, confidence = full_resolution_labels(probs, (101, 67), None, band_bytes=3 * 67 * 4 * 7)
    full = F.interpolate(probs[None], size=(101, 67), mode="bilinear", align_corners=False)[0]
    best, index = full.max(dim=0)
    np.testing.assert_allclose(confidence, best.numpy(), atol=1e-6)
    assert (labels == index.numpy()).mean() > 0.999  # ties may break differently


def test_huge_outputs_are_enlarged_from_an_exact_intermediate(monkeypatch) -> None:  # noqa: ANN001
    import annotator.engine.output as output

    probs = torch.softmax(torch.randn(2, 9, 12, generator=torch.Generator().manual_seed(0)), dim=0)
    exact, _ = full_resolution_labels(probs, (90, 120), None)
    monkeypatch.setattr(output, "MAX_EXACT_PIXELS", 45 * 60)
    labels, confidence = full_resolution_labels(probs, (90, 120), None)
    assert labels.shape == confidence.shape == (90, 120)
    assert (labels == exact).mean() > 0.95  # boundaries move by at most one intermediate pixel
    assert labels.dtype == np.uint8 and confidence.dtype == np.float32


def test_background_and_label_width() -> None:
    probs = torch.tensor([[[0.9, 0.4]], [[0.1, 0.6]]])
    labels, _ = full_resolution_labels(probs, (1, 2), 0.7)
    assert labels.tolist() == [[0, 2]]
    labels, _ = full_resolution_labels(probs, (2, 4), 0.7)
    assert labels.tolist() == [[0, 0, 2, 2], [0, 0, 2, 2]]  # interpolated 0.525 / 0.6 < 0.7
    assert label_dtype(256) == np.uint8 and label_dtype(257) == np.uint16
    many = torch.zeros(300, 2, 2)
    many[299] = 1.0
    labels, _ = full_resolution_labels(many, (4, 4), None)
    assert labels.dtype == np.uint16 and (labels == 299).all()


@pytest.mark.parametrize("channels", [1, 2, 5, 300])
def test_best_class_equals_torch_max_first_index_on_ties(channels: int) -> None:
    values = torch.rand(channels, 9, 11, generator=torch.Generator().manual_seed(channels))
    values[:, 0] = 0.5  # every channel ties: the first wins
    values[channels // 2 :, 1] = 2.0  # a tie among the last channels
    best, index = best_class(values)
    expected_best, expected_index = values.max(dim=0)
    assert torch.equal(best, expected_best)
    assert torch.equal(index.long(), expected_index)
    assert index.dtype == (torch.uint8 if channels < 256 else torch.int32)
