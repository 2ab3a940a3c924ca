"""PAMR's compiled loops give the torch version's weights and steps (to float rounding) on any
image shape, whatever the thread count, and refuse buffers that do not match their layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from annotator.engine import _pamr_parts, refine
from annotator.engine.refine import _OFFSETS, PAMR_DILATIONS, pamr_kernel

pytestmark = pytest.mark.skipif(
    not _pamr_parts.available(), reason="the compiled PAMR loops were not built (no C compiler)"
)


def _both(
    monkeypatch: pytest.MonkeyPatch, image: torch.Tensor, logits: torch.Tensor, steps: int = 10
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(affinity, refined) from the torch operations, then from the compiled loops."""
    results = []
    for native in (False, True):
        monkeypatch.setattr(refine, "USE_NATIVE", native)
        kernel = pamr_kernel(image)
        results.append((refine.pamr_affinity(image), kernel.propagate(logits, steps)))
    return results[0], results[1]


def _assert_same(torch_result: tuple, compiled: tuple) -> None:
    np.testing.assert_allclose(compiled[0].numpy(), torch_result[0].numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(compiled[1].numpy(), torch_result[1].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(512, 512), (1, 1), (1, 100), (100, 1), (17, 300), (37, 53)])
def test_compiled_loops_give_the_torch_weights_and_steps(
    monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(size))
    image = torch.from_numpy(rng.random((3, *size)))
    logits = torch.from_numpy(rng.normal(0, 8, (5, *size))).float()
    expected, compiled = _both(monkeypatch, image, logits)
    _assert_same(expected, compiled)
    assert (compiled[0].sum(dim=0) - 1).abs().max() < 1e-5  # a softmax over the 16 neighbours


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    channels=st.integers(1, 9),
    classes=st.integers(1, 4),
    levels=st.sampled_from([2, 3, 256]),
    steps=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_compiled_loops_agree_on_any_image(
    height: int, width: int, channels: int, classes: int, levels: int, steps: int, seed: int
) -> None:
    """Few colour levels give flat regions (a spread of 0) and sharp edges; 9 channels are more
    than the compiled weights take, so that kernel falls back to torch."""
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.integers(0, levels, (channels, height, width)) / 255.0)
    logits = torch.from_numpy(rng.normal(0, 8, (classes, height, width))).float()
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected, compiled = _both(monkeypatch, image, logits, steps)
    assert torch.isfinite(compiled[0]).all() and torch.isfinite(compiled[1]).all()
    _assert_same(expected, compiled)
    if steps == 0:
        assert torch.equal(compiled[1], logits)


def test_thread_count_changes_no_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    image = torch.from_numpy(rng.random((3, 70, 90)))
    logits = torch.from_numpy(rng.normal(0, 8, (4, 70, 90))).float()
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            kernel = pamr_kernel(image)
            results.append((kernel.weights.clone(), kernel.propagate(logits)))
    finally:
        torch.set_num_threads(threads)
    for weights, refined in results[1:]:
        assert torch.equal(weights, results[0][0]) and torch.equal(refined, results[0][1])


def test_buffers_that_do_not_fit_the_layout_are_refused() -> None:
    image = torch.rand(3, 20, 30, dtype=torch.float64)
    kernel = pamr_kernel(image)
    grid = kernel.grid
    offsets = grid.offsets(PAMR_DILATIONS, _OFFSETS)
    good = [grid.padded(torch.rand(2, 20, 30)), torch.empty(2, grid.size)]
    with pytest.raises(ValueError, match="expected a contiguous CPU torch.float32"):
        _pamr_parts.steps([good[0].double(), good[1]], kernel.weights, grid, offsets, 1)
    with pytest.raises(ValueError, match="shape"):
        _pamr_parts.steps([good[0], good[1][:, :-1]], kernel.weights, grid, offsets, 1)
    with pytest.raises(ValueError, match="PAMR weights"):
        _pamr_parts.steps(good, kernel.weights[:, :-1], grid, offsets, 1)
    with pytest.raises(ValueError, match="reach outside the padding"):
        _pamr_parts.steps(good, kernel.weights, grid, [o * 2 for o in offsets], 1)
    flat = grid.padded(image)
    with pytest.raises(ValueError, match="PAMR weights"):
        _pamr_parts.weights(flat, torch.empty(16, grid.strip - 1), grid, offsets, offsets)


def test_weight_rows_are_spaced_off_4_kib() -> None:
    rows = _pamr_parts.weight_rows(16, 512 * 544)
    assert rows.shape == (16, 512 * 544) and not rows.any()
    assert (rows.stride(0) * 4) % 4096 != 0
