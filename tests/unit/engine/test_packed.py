"""Linear layers against MKL-packed weights: the same bits as ``F.linear``, never a stale weight,
packed only for a row count that repeats, and the plain path wherever packing cannot serve."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from annotator.engine import _packed
from annotator.engine._packed import linear, packing
from annotator.engine.config import EngineConfig
from annotator.engine.segmenter import create_segmenter
from tests.unit.engine.helpers import TINY_MODEL

pytestmark = pytest.mark.skipif(not _packed._SUPPORTED, reason="torch without MKL's packed GEMM")


@pytest.fixture(autouse=True)
def _packing_on() -> Iterator[None]:
    """The tests call linear() as the image tower's forward does: inside packing()."""
    with packing():
        yield


def _layer(inputs: int = 96, outputs: int = 80) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(inputs + outputs)
    return torch.randn(outputs, inputs, generator=generator), torch.randn(outputs)


def _packed_for(weight: torch.Tensor) -> torch.Tensor | None:
    entry = _packed._PACKINGS.get(weight)
    return None if entry is None else entry.packed


@pytest.mark.parametrize("rows", [64, 197, 442, 1025])
def test_packed_gemm_gives_the_bits_of_f_linear(rows: int) -> None:
    weight, bias = _layer()
    x = torch.randn(2, rows // 2, 96) if rows % 2 == 0 else torch.randn(rows, 96)
    results = [linear(x, weight, bias) for _ in range(3)]
    assert _packed_for(weight) is not None  # packed on the second call
    for result in results:
        assert result.shape == (*x.shape[:-1], 80)
        assert torch.equal(result, F.linear(x, weight, bias))
    assert torch.equal(linear(x, weight, None), F.linear(x, weight, None))


def test_a_weight_changed_in_place_is_never_served_stale() -> None:
    weight, bias = _layer()
    x = torch.randn(128, 96)
    linear(x, weight, bias), linear(x, weight, bias)
    assert _packed_for(weight) is not None
    with torch.no_grad():
        weight.mul_(-2.0)  # as an optimiser step or load_state_dict would
    assert torch.equal(linear(x, weight, bias), F.linear(x, weight, bias))
    layer = torch.nn.Linear(96, 80)
    with torch.no_grad():
        linear(x, layer.weight, layer.bias), linear(x, layer.weight, layer.bias)
        assert _packed_for(layer.weight) is not None
        layer.weight.data = torch.randn(80, 96)  # as Module.to() swaps a parameter's tensor
        assert torch.equal(linear(x, layer.weight, layer.bias), layer(x))


def test_only_a_repeated_row_count_is_packed_and_an_odd_one_keeps_it() -> None:
    weight, bias = _layer()
    for rows in (100, 300, 100, 300):  # alternating sizes: never packed
        linear(torch.randn(rows, 96), weight, bias)
    assert _packed_for(weight) is None
    for rows in (300, 300, 70, 300, 300, 70):  # an image's windows: 2 full batches, 1 smaller
        out = linear(torch.randn(rows, 96), weight, bias)
        assert out.shape == (rows, 80)
    entry = _packed._PACKINGS.get(weight)
    assert entry.packed is not None and entry.rows == 300


def test_weights_are_packed_only_where_packing_is_asked_for() -> None:
    weight, bias = _layer()
    x = torch.randn(128, 96)
    _packed._STATE.enabled = False  # outside a packing() block
    try:
        for _ in range(3):
            assert torch.equal(linear(x, weight, bias), F.linear(x, weight, bias))
        assert _packed_for(weight) is None
    finally:
        _packed._STATE.enabled = True


def test_the_image_tower_packs_its_weights_and_the_text_tower_does_not() -> None:
    """Only the image tower's forward packs (one row count per image size); the text tower's
    row counts change with every name, so packing there would only grow memory."""
    config = EngineConfig(
        model=TINY_MODEL, pretrained=None, head="naclip", short_side=160, text_cache=False
    )
    segmenter = create_segmenter(config)
    _packed._STATE.enabled = False  # as on any thread outside the image tower
    try:
        for batch in range(3):  # batches of 30 new names of the same length: hundreds of rows
            segmenter.clear_cache()
            segmenter.set_image(np.zeros((160, 160, 3), np.uint8))  # 100 patches + 1
            segmenter.encode_text([f"thing {batch} {index:02d}" for index in range(30)])
    finally:
        _packed._STATE.enabled = True
    visual = segmenter.backbone.image_encoder.visual.transformer.resblocks
    text = segmenter.backbone.text_encoder.model.transformer.resblocks
    assert all(_packed_for(block.mlp.c_fc.weight) is not None for block in visual[:-1])
    assert all(_packed_for(block.mlp.c_fc.weight) is None for block in text)


def test_training_small_and_other_inputs_take_the_plain_path() -> None:
    weight, bias = _layer()
    weight.requires_grad_(True)
    x = torch.randn(128, 96, requires_grad=True)
    for _ in range(2):
        linear(x, weight, bias).sum().backward()
    assert _packed_for(weight) is None and x.grad is not None and weight.grad is not None
    plain, _ = _layer(30, 20)
    for x in (torch.randn(8, 30), torch.randn(8, 30), torch.randn(128, 30).double()):
        out = linear(x, plain.to(x.dtype), None)
        assert torch.equal(out, F.linear(x, plain.to(x.dtype)))
    assert _packed_for(plain) is None
