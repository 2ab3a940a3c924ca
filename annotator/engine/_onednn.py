"""CPU float32 inference of the ViT's linear layers through oneDNN (bundled with torch).

On a 2-core CPU, torch's default path (MKL's GEMM, then a separate pass for GELU and for the
residual) ran the image tower's 442-row products at ~63 GFLOP/s on 2 threads on a shared machine,
oneDNN's fused linear (bias, GELU or the residual added in the same kernel) at ~95; the whole
NACLIP encoder took 1.17 s instead of 1.82 there, and the same time on one thread. Results differ
from the default path by float32 summation order only (~2e-7 on the features).

Used only where it is the same computation: CPU float32 tensors, autograd off, and no torch
dispatch mode active (a FLOP counter or tracer sees the plain aten operations instead); else the
plain torch operations run.
"""

from __future__ import annotations

import torch
from torch import Tensor


def usable(inputs: Tensor, weight: Tensor) -> bool:
    """Whether :func:`linear` and :func:`add_linear` run through oneDNN for these tensors."""
    if inputs.device.type != "cpu" or inputs.dtype != torch.float32:
        return False
    if weight.dtype != torch.float32 or torch.is_grad_enabled():
        return False
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    try:  # private torch API: a torch without it runs the plain operations
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        fused = hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (ImportError, AttributeError, RuntimeError):
        return False
    return fused and _get_current_dispatch_mode() is None


def linear(inputs: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool = False) -> Tensor:
    """``F.linear(inputs, weight, bias)`` (then exact GELU when ``gelu``), ``inputs`` ``[..., K]``."""
    if not usable(inputs, weight):
        out = torch.nn.functional.linear(inputs, weight, bias)
        return torch.nn.functional.gelu(out) if gelu else out
    attr = "gelu" if gelu else "none"
    return torch.ops.mkldnn._linear_pointwise(
        inputs, weight, bias, attr, [], "none" if gelu else ""
    )


def add_linear(x: Tensor, inputs: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x + F.linear(inputs, weight, bias)`` with the sum in the product's kernel."""
    if not usable(inputs, weight) or x.shape[:-1] != inputs.shape[:-1]:
        return x + torch.nn.functional.linear(inputs, weight, bias)
    return torch.ops.mkldnn._linear_pointwise.binary(inputs, x, weight, bias, "add")
