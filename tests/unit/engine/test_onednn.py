"""The oneDNN path of the ViT's linear layers computes what torch's plain operations compute,
and steps aside where it would not be the same computation (autograd, a FLOP counter)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from annotator.engine import _onednn


def _operands() -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, 48, generator=generator)
    residual = torch.randn(2, 37, 80, generator=generator)
    weight = torch.randn(80, 48, generator=generator) / 7
    bias = torch.randn(80, generator=generator)
    return x, residual, weight, bias


def test_fused_linear_gelu_and_residual_equal_the_plain_operations() -> None:
    x, residual, weight, bias = _operands()
    plain = torch.nn.functional.linear(x, weight, bias)
    with torch.inference_mode():
        assert _onednn.usable(x, weight) == torch.backends.mkldnn.is_available()
        fused = _onednn.linear(x, weight, bias)
        fused_gelu = _onednn.linear(x, weight, bias, gelu=True)
        summed = _onednn.add_linear(residual, x, weight, bias)
        unbiased = _onednn.linear(x, weight, None)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused_gelu, torch.nn.functional.gelu(plain), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(summed, residual + plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unbiased, x @ weight.T, rtol=1e-5, atol=1e-5)


def test_autograd_and_flop_counting_see_the_plain_operations() -> None:
    x, residual, weight, bias = _operands()
    assert not _onednn.usable(x, weight)  # autograd on: gradients must flow
    out = _onednn.add_linear(residual, x.requires_grad_(), weight, bias)
    assert out.requires_grad
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        _onednn.linear(x, weight, bias)
    assert counter.get_total_flops() == 2 * 2 * 37 * 48 * 80
