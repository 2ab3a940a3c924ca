"""MaskCLIP: the last block keeps only the value path: ``x + out_proj(v)``, then the FFN."""

from __future__ import annotations

from torch import Tensor, nn

from annotator.engine.heads._attention import (
    add_mlp,
    residual_heads,
    split_qkv,
)


def maskclip_last_block(block: nn.Module, x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Last block on tokens ``x`` ``[B, 1 + gh*gw, W]``; each token attends only to itself."""
    _, _, v = split_qkv(block.attn, block.ln_1(x))
    return add_mlp(block, residual_heads(block, x, v))
