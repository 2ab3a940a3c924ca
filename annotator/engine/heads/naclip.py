"""NACLIP: ``softmax(k k^T s + G) v`` with a Gaussian neighbourhood bias G; no residual, no FFN."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor, nn

from annotator.engine.heads._attention import (
    gaussian_patch_bias,
    merge_heads,
    self_attention,
    split_qkv,
)

#: Standard deviation of the neighbourhood window, in patches (the paper's value).
GAUSSIAN_STD = 5.0


@lru_cache(maxsize=8)
def _bias(grid: tuple[int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
    return gaussian_patch_bias(grid, GAUSSIAN_STD).to(device=device, dtype=dtype)


def naclip_last_block(block: nn.Module, x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Last block on tokens ``x`` ``[B, 1 + gh*gw, W]`` over the patch ``grid`` ``(gh, gw)``."""
    _, k, v = split_qkv(block.attn, block.ln_1(x))
    bias = _bias(grid, k.device, k.dtype)
    return merge_heads(block.attn, self_attention(k, k, v, bias))
