"""Every dense head runs on the tiny random ViT for any size; blocks match open_clip's maths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotator.engine import EngineConfigError, list_heads
from annotator.engine.backbone import ClipDenseEncoder, interpolate_grid_embedding
from annotator.engine.heads import get_head
from annotator.engine.heads._attention import standard_block
from annotator.engine.segmenter import Segmenter
from tests.unit.engine.helpers import tiny_segmenter


@pytest.mark.parametrize("head", ["naclip", "sclip", "clearclip", "maskclip"])
@pytest.mark.parametrize("size", [(37, 53), (64, 17), (91, 91)])
def test_every_head_gives_full_size_outputs(head: str, size: tuple[int, int]) -> None:
    segmenter = tiny_segmenter(head)
    image = np.random.default_rng(1).integers(0, 255, (*size, 3), np.uint8)
    segmenter.set_image(image)
    proposal = segmenter.predict(["cat", "dog; puppy", "grass"])
    assert proposal.label_map.shape == size
    assert proposal.confidence.shape == size
    assert proposal.probabilities.shape[0] == 3
    assert np.isfinite(proposal.probabilities).all()
    features = segmenter.image_features(image)
    assert features.dtype == np.float32 and features.shape[0] == 32
    np.testing.assert_allclose(np.linalg.norm(features, axis=0), 1.0, rtol=1e-4)


def test_heads_are_registered_and_differ(tiny: Segmenter) -> None:
    assert list_heads() == ["clearclip", "maskclip", "naclip", "sclip"]
    visual = tiny.backbone.image_encoder.visual
    pixels = torch.randn(1, 3, 48, 80)
    with torch.inference_mode():
        out = {name: ClipDenseEncoder(visual, name)(pixels) for name in list_heads()}
    assert out["naclip"].shape == (1, 32, 3, 5)
    for a in out:
        for b in out:
            if a < b:
                assert not torch.allclose(out[a], out[b]), (a, b)


def test_unknown_head_names_the_choices() -> None:
    with pytest.raises(EngineConfigError, match="naclip"):
        get_head("segformer")


def test_standard_block_matches_open_clip_block(tiny: Segmenter) -> None:
    block = tiny.backbone.image_encoder.visual.transformer.resblocks[0]
    tokens = torch.randn(2, 13, 64)
    with torch.inference_mode():
        torch.testing.assert_close(
            standard_block(block, tokens), block(tokens), atol=1e-5, rtol=1e-4
        )


def test_native_size_matches_open_clip_tokens(tiny: Segmenter) -> None:
    """With the unmodified last block, our encoder reproduces open_clip's own patch tokens."""
    visual = tiny.backbone.image_encoder.visual
    encoder = ClipDenseEncoder(visual, lambda block, x, grid: standard_block(block, x))
    pixels = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        ours = encoder(pixels).flatten(2).transpose(1, 2)
        visual.output_tokens = True
        _, tokens = visual(pixels)
        visual.output_tokens = False
    torch.testing.assert_close(ours, tokens @ visual.proj, atol=1e-4, rtol=1e-4)


def test_positional_grid_interpolates_to_any_shape() -> None:
    grid = torch.arange(16.0).view(4, 4, 1)
    assert torch.equal(interpolate_grid_embedding(grid, (4, 4)), grid.view(16, 1))
    resized = interpolate_grid_embedding(grid, (3, 7))
    assert resized.shape == (21, 1)
    assert resized[0, 0] < resized[-1, 0]  # keeps the top-left -> bottom-right order


def test_non_vit_towers_are_refused_with_a_typed_error() -> None:
    from annotator.engine import EngineConfig, create_segmenter

    with pytest.raises(EngineConfigError, match="not a plain CLIP ViT"):
        create_segmenter(EngineConfig(model="RN50", pretrained=None))
