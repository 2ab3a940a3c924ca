"""Out-of-memory fallbacks, logit adapters, missing weights, and a Qt-free import."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from annotator.engine import EngineConfig, EngineWarning, WorkingView, create_segmenter, devices
from annotator.engine.devices import keep_freed_memory
from annotator.engine.segmenter import EngineOutOfMemoryError
from annotator.engine.testing import create_planted_segmenter
from tests.unit.engine.helpers import PALETTE, painted_scene


class _Limited(torch.nn.Module):
    """Wraps an encoder; inputs with more than ``max_pixels`` pixels run out of memory."""

    def __init__(self, inner: torch.nn.Module, max_pixels: int) -> None:
        super().__init__()
        self.inner, self.max_pixels, self.patch_size = inner, max_pixels, inner.patch_size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[0] * pixels.shape[2] * pixels.shape[3] > self.max_pixels:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(pixels)


def test_out_of_memory_falls_back_to_smaller_tiles() -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE, short_side=224)
    backbone = segmenter.backbone
    backbone.image_encoder = _Limited(backbone.image_encoder, 120 * 120)
    with pytest.warns(EngineWarning, match="Out of memory"):
        segmenter.set_image(np.ascontiguousarray(image[:, ::-1]))
    proposal = segmenter.predict(list(PALETTE))
    assert (proposal.label_map == truth[:, ::-1]).mean() >= 0.98  # 224 px: coarser patches


def test_out_of_memory_everywhere_is_a_typed_error() -> None:
    segmenter = create_planted_segmenter(PALETTE)
    segmenter.backbone.image_encoder = _Limited(segmenter.backbone.image_encoder, 10)
    with pytest.warns(EngineWarning), pytest.raises(EngineOutOfMemoryError, match="short-side"):
        segmenter.set_image(painted_scene()[0])


def test_adapter_replaces_zero_shot_logits() -> None:
    image, truth = painted_scene()
    segmenter = create_planted_segmenter(PALETTE)
    segmenter.set_image(image)
    seen: list[WorkingView] = []

    def swap_first_two(view: WorkingView) -> np.ndarray:
        seen.append(view)
        return view.zero_shot_logits[[1, 0, 2, 3]]

    proposal = segmenter.predict(list(PALETTE), adapter=swap_first_two)
    view = seen[0]
    assert view.image.shape == (336, 448, 3) and view.original_size == (300, 400)
    assert view.features.shape == (6, 42, 56) and view.text_embeddings.shape == (4, 6)
    swapped = np.array([1, 0, 2, 3])[truth]
    assert (proposal.label_map == swapped).mean() >= 0.99
    with pytest.raises(ValueError, match="expected"):
        segmenter.predict(list(PALETTE), adapter=lambda v: np.zeros((2, 3, 4), np.float32))


def test_adapter_works_without_weights() -> None:
    # No refinement: on a flat black image PAMR is a plain blur of the adapter's step.
    config = EngineConfig(pretrained="openai", refine=None)
    segmenter = create_segmenter(config, allow_missing_weights=True)
    segmenter.set_image(np.zeros((30, 50, 3), np.uint8))

    def right_half_is_b(view: WorkingView) -> np.ndarray:
        assert view.features is None and view.text_embeddings is None
        assert not view.zero_shot_logits.any()
        logits = np.zeros_like(view.zero_shot_logits)
        logits[1, :, view.image.shape[1] // 2 :] = 10.0
        return logits

    labels = segmenter.predict(["a", "b"], adapter=right_half_is_b).label_map
    assert labels.shape == (30, 50)
    assert (labels[:, :20] == 0).all() and (labels[:, 30:] == 1).all()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_malloc_is_told_to_keep_freed_memory_on_linux() -> None:
    assert keep_freed_memory()  # mallopt found and both settings accepted


@pytest.mark.parametrize(("idle", "expected"), [(0, 1), (1, 2), (7, 2)])
def test_small_work_uses_a_second_thread_only_while_a_core_is_idle(
    monkeypatch: pytest.MonkeyPatch, idle: int, expected: int
) -> None:
    monkeypatch.setattr(devices, "idle_cores", lambda: idle)
    previous = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        with devices.small_work_threads():
            assert torch.get_num_threads() == expected
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(previous)
