"""ClearCLIP: last block = ``out_proj(softmax(q q^T s) v)``, with no residual and no FFN."""

from __future__ import annotations

from torch import Tensor, nn

from annotator.engine.heads._attention import merge_heads, self_attention, split_qkv


def clearclip_last_block(block: nn.Module, x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Last block on tokens ``x`` ``[B, 1 + gh*gw, W]``."""
    q, _, v = split_qkv(block.attn, block.ln_1(x))
    return merge_heads(block.attn, self_attention(q, q, v))
