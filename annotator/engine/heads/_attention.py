"""Attention pieces shared by the heads: open_clip blocks run with fused attention (SDPA).

Token tensors are batch-first ``[B, T, W]`` (T = 1 class token + gh * gw patch tokens, row-major
over the patch grid); per-head tensors are ``[B, heads, T, head_dim]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def split_qkv(attn: nn.MultiheadAttention, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Project normalised tokens ``y`` ``[B, T, W]`` to per-head q, k, v ``[B, H, T, W/H]``."""
    batch, tokens, width = y.shape
    qkv = F.linear(y, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(batch, tokens, 3, attn.num_heads, width // attn.num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    return q, k, v


def _concat_heads(out: Tensor) -> Tensor:
    batch, heads, tokens, dim = out.shape
    return out.transpose(1, 2).reshape(batch, tokens, heads * dim)


def merge_heads(attn: nn.MultiheadAttention, out: Tensor) -> Tensor:
    """Concatenate heads of ``out`` ``[B, H, T, d]`` and apply the output projection -> ``[B, T, W]``."""
    return attn.out_proj(_concat_heads(out))


def _plain(block: nn.Module, name: str) -> bool:
    return isinstance(getattr(block, name, None), nn.Identity | type(None))


def add_linear(x: Tensor, inputs: Tensor, linear: nn.Linear) -> Tensor:
    """``x + linear(inputs)`` as one GEMM accumulating into ``x + bias`` (saves two passes)."""
    start = x + linear.bias if linear.bias is not None else x.clone()
    flat = torch.addmm(
        start.reshape(-1, x.shape[-1]), inputs.reshape(-1, inputs.shape[-1]), linear.weight.t()
    )
    return flat.view(x.shape)


def self_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """``softmax(q k^T / sqrt(d) + bias) v`` through PyTorch's fused kernels."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def _layer_scale(block: nn.Module, name: str, x: Tensor) -> Tensor:
    scale = getattr(block, name, None)
    return x if scale is None else scale(x)


def add_mlp(block: nn.Module, x: Tensor) -> Tensor:
    """The block's feed-forward half with its residual: ``x + mlp(ln_2(x))``."""
    mlp = block.mlp
    if _plain(block, "ls_2") and all(hasattr(mlp, n) for n in ("c_fc", "gelu", "c_proj")):
        return add_linear(x, mlp.gelu(mlp.c_fc(block.ln_2(x))), mlp.c_proj)
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
