"""SCLIP: correlative self-attention ``softmax(q q^T s) + softmax(k k^T s)`` in the last block."""

from __future__ import annotations

from torch import Tensor, nn

from annotator.engine.heads._attention import (
    add_mlp,
    residual_heads,
    self_attention,
    split_qkv,
)


def sclip_last_block(block: nn.Module, x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Last block on tokens ``x`` ``[B, 1 + gh*gw, W]``, residual and FFN kept."""
    q, k, v = split_qkv(block.attn, block.ln_1(x))
    attended = self_attention(q, q, v) + self_attention(k, k, v)
    return add_mlp(block, residual_heads(block, x, attended))
