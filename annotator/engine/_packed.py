"""Linear layers against weight matrices MKL has packed once (CPU, float32, inference).

MKL's GEMM copies the weight matrix into its blocked layout on every call. At the few hundred
token rows of one image that copy is a tenth to a quarter of a ViT linear layer's time (a ViT-B
moves ~340 MB of weights through it per image). ``cblas_sgemm_pack`` (``torch.ops.mkl``, the op
torch's own compiler uses for frozen float32 linears) does it once, for one row count.

The packed layout depends on the row count, and packing all of a ViT-B's weights takes ~0.1 s
and as much memory as the weights, so a weight is packed only once two calls in a row have the
same row count (the images of a folder mostly share a size; a mix of sizes keeps the plain path
rather than repacking for every image), and only one packing per weight is kept. A packing is
dropped when its weight changes in place (training, ``load_state_dict``) or is freed.

The packed GEMM runs the same kernel with the same operands and bias handling as ``F.linear``
on the CPU, so the results are the same to the last bit (checked in the tests); below
:data:`MIN_ROWS` rows MKL may pick another kernel, so small inputs keep the plain path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

#: Fewer rows than this keep ``F.linear`` (packing pays off, and stays bit-exact, above it).
MIN_ROWS = 64


@dataclass
class _Packing:
    last_rows: int  # the row count of the latest call
    rows: int = 0  # the row count ``packed`` is for
    version: tuple[int, int] = (0, -1)  # the weight's (address, in-place version) when packed
    packed: Tensor | None = None


_PACKINGS: WeakIdKeyDictionary = WeakIdKeyDictionary()
_LOCK = threading.Lock()
_STATE = threading.local()


@contextmanager
def packing() -> Iterator[None]:
    """Let :func:`linear` pack weights on this thread inside the block (the image tower's forward:
    one row count per image size; the text tower's counts change with every name, and its
    repacking would only grow the process's memory)."""
    before = getattr(_STATE, "enabled", False)
    _STATE.enabled = True
    try:
        yield
    finally:
        _STATE.enabled = before


def _supported() -> bool:
    return bool(
        torch.backends.mkl.is_available()
        and hasattr(torch.ops.mkl, "_mkl_linear")
        and hasattr(torch.ops.mkl, "_mkl_reorder_linear_weight")
    )


_SUPPORTED = _supported()


def _packable(x: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    if not getattr(_STATE, "enabled", False):
        return False
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return (
        _SUPPORTED
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        and weight.dim() == 2
        and weight.is_contiguous()
        and (bias is None or bias.dim() == 1)
    )


def _packed_weight(weight: Tensor, rows: int) -> Tensor | None:
    """The packing of ``weight`` for ``rows`` rows, if there is one or the previous call had the
    same row count (then it replaces the packing for another count). So a count that comes up
    between calls of the packed one (the last, smaller batch of an image's windows) runs plain
    rather than repacking each time, and so does a mix of image sizes."""
    with _LOCK:
        entry = _PACKINGS.get(weight)
        if entry is None:
            _PACKINGS[weight] = _Packing(rows)
            return None
        version = (weight.data_ptr(), weight._version)
        if entry.packed is not None and entry.version != version:
            entry.packed = None  # changed in place (training, load_state_dict) or new ``.data``
        repeated, entry.last_rows = entry.last_rows == rows, rows
        if entry.packed is not None and entry.rows == rows:
            return entry.packed
        if not repeated:
            return None
        entry.packed = None  # free the old packing before making the new one
        entry.packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
        entry.rows, entry.version = rows, version
        return entry.packed


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``: ``x`` ``[..., K]``, ``weight`` ``[N, K]`` -> ``[..., N]``."""
    if x.dim() < 2 or not _packable(x, weight, bias):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    rows = flat.shape[0]
    packed = _packed_weight(weight, rows) if rows >= MIN_ROWS else None
    if packed is None:
        return F.linear(x, weight, bias)
    out = torch.ops.mkl._mkl_linear(flat, packed, weight, bias, rows)
    return out.view(*x.shape[:-1], weight.shape[0])


def packed_count() -> int:
    """How many weights hold a packing now (for tests and benchmarks)."""
    with _LOCK:
        return sum(entry.packed is not None for entry in _PACKINGS.values())
