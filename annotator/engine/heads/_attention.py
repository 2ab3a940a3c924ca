"""Attention pieces shared by the heads: open_clip blocks run with fused attention (SDPA).

Token tensors are batch-first ``[B, T, W]`` (T = 1 class token + gh * gw patch tokens, row-major
over the patch grid); per-head tensors are ``[B, heads, T, head_dim]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from annotator.engine._packed import linear


def split_qkv(attn: nn.MultiheadAttention, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Project normalised tokens ``y`` ``[B, T, W]`` to per-head q, k, v ``[B, H, T, W/H]``."""
    batch, tokens, width = y.shape
    qkv = linear(y, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(batch, tokens, 3, attn.num_heads, width // attn.num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    return q, k, v


def _concat_heads(out: Tensor) -> Tensor:
    batch, heads, tokens, dim = out.shape
    return out.transpose(1, 2).reshape(batch, tokens, heads * dim)


def merge_heads(attn: nn.MultiheadAttention, out: Tensor) -> Tensor:
    """Concatenate heads of ``out`` ``[B, H, T, d]`` and apply the output projection -> ``[B, T, W]``."""
    return linear(_concat_heads(out), attn.out_proj.weight, attn.out_proj.bias)


def _plain(block: nn.Module, name: str) -> bool:
    return isinstance(getattr(block, name, None), nn.Identity | type(None))


def add_linear(x: Tensor, inputs: Tensor, layer: nn.Linear) -> Tensor:
    """``x + layer(inputs)``, the GEMM written straight into the result (one pass for the sum)."""
    return linear(inputs, layer.weight, layer.bias).add_(x)


def self_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """``softmax(q k^T / sqrt(d) + bias) v`` through PyTorch's fused kernels."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def _layer_scale(block: nn.Module, name: str, x: Tensor) -> Tensor:
    scale = getattr(block, name, None)
    return x if scale is None else scale(x)


def add_mlp(block: nn.Module, x: Tensor) -> Tensor:
    """The block's feed-forward half with its residual: ``x + mlp(ln_2(x))``."""
    mlp = block.mlp
    layers = (getattr(mlp, "c_fc", None), getattr(mlp, "c_proj", None))
    if (
        _plain(block, "ls_2")
        and hasattr(mlp, "gelu")
        and all(isinstance(n, nn.Linear) for n in layers)
    ):
        hidden = linear(block.ln_2(x), mlp.c_fc.weight, mlp.c_fc.bias)
        return add_linear(x, mlp.gelu(hidden), mlp.c_proj)
    return x + _layer_scale(block, "ls_2", mlp(block.ln_2(x)))


def standard_block(block: nn.Module, x: Tensor) -> Tensor:
    """One unmodified open_clip ``ResidualAttentionBlock`` on ``x`` ``[B, T, W]``, with SDPA."""
    q, k, v = split_qkv(block.attn, block.ln_1(x))
    return add_mlp(block, residual_heads(block, x, self_attention(q, k, v)))


def residual_heads(block: nn.Module, x: Tensor, heads: Tensor) -> Tensor:
    """``x + ls_1(out_proj(concat(heads)))`` for per-head outputs ``heads`` ``[B, H, T, d]``."""
    if _plain(block, "ls_1"):
        return add_linear(x, _concat_heads(heads), block.attn.out_proj)
    return residual(block, x, merge_heads(block.attn, heads))


def residual(block: nn.Module, x: Tensor, update: Tensor) -> Tensor:
    """``x + ls_1(update)``: the attention residual of a block."""
    return x + _layer_scale(block, "ls_1", update)


@torch.no_grad()
def gaussian_patch_bias(grid: tuple[int, int], std: float) -> Tensor:
    """Attention bias ``[1 + N, 1 + N]`` float32: ``exp(-d^2 / (2 std^2))`` between patches.

    ``d`` is the distance in patches on the ``grid`` ``(gh, gw)`` (N = gh * gw, row-major); the row
    and column of the class token are zero.
    """
    gh, gw = grid
    ys, xs = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], dim=1).float()
    squared = torch.cdist(coords, coords).square()
    bias = torch.zeros(gh * gw + 1, gh * gw + 1)
    bias[1:, 1:] = torch.exp(-squared / (2.0 * std * std))
    return bias
