"""PAMR as NACLIP publishes it: equal to a plain stacked re-derivation, exact on a colour edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.engine.refine import PAMR_DILATIONS, pamr
from tests.unit.engine.protocol_reference import pamr as reference_pamr


def test_pamr_equals_the_published_description() -> None:
    rng = np.random.default_rng(5)
    image = torch.from_numpy(rng.random((3, 50, 70)))
    image[:, 20:, 30:] += 0.8  # a region with its own colour
    logits = torch.from_numpy(rng.normal(0, 4, (1, 3, 50, 70)))
    expected = reference_pamr(image[None], logits)[0]
    np.testing.assert_allclose(pamr(image, logits[0]).numpy(), expected.numpy(), atol=1e-4)
    assert PAMR_DILATIONS == (8, 16)


@pytest.mark.parametrize("offset", [-12, -8, -4, 4, 8, 12])
def test_pamr_puts_a_coarse_boundary_exactly_on_the_colour_edge(offset: int) -> None:
    """A boundary up to 12 px off (about one ViT patch at working size) ends on the edge."""
    height, width, edge = 64, 96, 40
    noise = np.random.default_rng(0).normal(0, 0.02, (3, height, width))
    image = torch.from_numpy(noise).float()
    image[:, :, edge:] += 1.0
    logits = torch.zeros(2, height, width)
    logits[0, :, : edge + offset] = 1.0
    logits[1, :, edge + offset :] = 1.0
    labels = pamr(image, logits).argmax(dim=0)
    assert (labels[:, :edge] == 0).all() and (labels[:, edge:] == 1).all()
