"""All prompt templates of new class names in one batched pass of the CLIP text tower.

With 80 templates, encoding a name template by template means 80 passes of a few tokens each:
on a CPU the per-operation overhead, not the arithmetic, dominates. Here every (name, template)
prompt is one row of a single batch. Each row computes only its own tokens (the name and the
template's text after it); the keys and values of the template's text before the name are
cached per template (as :class:`~annotator.engine.backbone.ClipTextEncoder` caches them) and
padded to a common length, with an attention mask that hides the padding and keeps the tower
causal. Rows are ``[B, S, W]`` (B = names x templates, S = longest own part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from annotator.engine.heads._attention import add_mlp, residual_heads, self_attention

if TYPE_CHECKING:
    from annotator.engine.backbone import ClipTextEncoder


@dataclass
class _Prefixes:
    """Per block, the templates' cached keys and values ``[T, H, Lmax, d]``; ``lengths`` ``[T]``."""

    keys: list[Tensor]
    values: list[Tensor]
    lengths: Tensor
    tokens: list[tuple[int, ...]]


def _prefix_tokens(encoder: ClipTextEncoder, template: str) -> tuple[int, ...]:
    prefix = encoder._tokens([template.split("{}")[0].rstrip()])[0]
    return tuple(prefix[: int(prefix.argmax())].tolist())  # start token + prefix words


def _pad(tensor: Tensor, length: int) -> Tensor:
    """``[1, H, L, d]`` -> ``[H, length, d]`` zero-padded along L."""
    pad = length - tensor.shape[2]
    return torch.nn.functional.pad(tensor[0], (0, 0, 0, pad)) if pad else tensor[0]


def _prefixes(encoder: ClipTextEncoder, templates: tuple[str, ...]) -> _Prefixes:
    cache = encoder.__dict__.setdefault("_batched_prefixes", {})
    if templates not in cache:
        tokens = [_prefix_tokens(encoder, template) for template in templates]
        stores = [encoder._prefix_kv(prefix) for prefix in tokens]
        longest = max(len(prefix) for prefix in tokens)
        blocks = len(stores[0])
        keys = [torch.stack([_pad(s[b][0], longest) for s in stores]) for b in range(blocks)]
        values = [torch.stack([_pad(s[b][1], longest) for s in stores]) for b in range(blocks)]
        lengths = torch.tensor([len(prefix) for prefix in tokens], device=keys[0].device)
        cache[templates] = _Prefixes(keys, values, lengths, tokens)
    return cache[templates]


def encode_templates(
    encoder: ClipTextEncoder, templates: Sequence[str], names: Sequence[str]
) -> Tensor | None:
    """``[N, T, D]`` float32 embeddings (not normalised) of every ``template.format(name)``, or
    ``None`` when this tower or these prompts cannot be batched this way (then encode per
    template)."""
    if not encoder.truncate or not names:
        return None
    templates = tuple(templates)
    prefixes = _prefixes(encoder, templates)
    prompts = [template.format(name) for name in names for template in templates]
    tokens = encoder._tokens(prompts)
    template_index = torch.arange(len(templates), device=tokens.device).repeat(len(names))
    for row, index in enumerate(template_index.tolist()):
        prefix = prefixes.tokens[index]
        if tuple(tokens[row, : len(prefix)].tolist()) != prefix:
            return None  # a template splits a word at the name: no reuse
    out = _encode_rows(encoder, tokens, template_index, prefixes)
    return out.float().view(len(names), len(templates), -1)


def _encode_rows(
    encoder: ClipTextEncoder, tokens: Tensor, template_index: Tensor, prefixes: _Prefixes
) -> Tensor:
    """Rows are packed: the per-token layers (projections, feed-forward, norms: nearly all the
    work) run only on the rows' real tokens, not on the padding up to the longest row (about
    half of an 80-template batch); attention runs on the padded ``[B, H, S, d]`` layout."""
    model = encoder.model
    starts = prefixes.lengths[template_index]  # [B] first own position of each row
    own = tokens.argmax(dim=-1) - starts + 1  # own tokens per row, end-of-text included
    span = int(own.max())
    offsets = torch.arange(span, device=tokens.device)
    positions = (starts[:, None] + offsets[None]).clamp(max=tokens.shape[1] - 1)
    real = (offsets[None] < own[:, None]).flatten().nonzero().squeeze(1)  # packed -> padded
    ids = tokens.gather(1, positions).flatten()[real]
    x = model.token_embedding(ids) + model.positional_embedding[positions.flatten()[real]]
    mask = _mask(prefixes.lengths[template_index], prefixes.keys[0].shape[2], span)
    rows = torch.arange(tokens.shape[0], device=tokens.device)
    pooled = rows * span + own - 1  # each row's end-of-text, padded index
    blocks = model.transformer.resblocks
    for index, block in enumerate(blocks[:-1]):
        q, k, v = _padded_qkv(block, x, real, tokens.shape[0], span)
        k, v = _with_prefix(prefixes, index, template_index, k, v)
        attended = self_attention(q, k, v, mask).transpose(1, 2).flatten(0, 1)  # [B * S, H, d]
        x = add_mlp(block, residual_heads(block, x[:, None], attended[real][:, :, None])[:, 0])
    q, k, v = _padded_qkv(blocks[-1], x, real, tokens.shape[0], span)
    k, v = _with_prefix(prefixes, len(blocks) - 1, template_index, k, v)
    # Only the end-of-text token is read after the last block.
    q, pooled_mask = q[rows, :, own - 1].unsqueeze(2), mask[rows, :, own - 1].unsqueeze(2)
    last = torch.searchsorted(real, pooled)  # packed index of each row's end-of-text
    x = x[last][:, None]
    x = add_mlp(blocks[-1], residual_heads(blocks[-1], x, self_attention(q, k, v, pooled_mask)))
    x = model.ln_final(x[:, 0])
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


def _padded_qkv(
    block: torch.nn.Module, x: Tensor, real: Tensor, batch: int, span: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-head q, k, v ``[B, H, S, d]`` of packed tokens ``x`` ``[N, W]`` (zeros at padding)."""
    packed = torch.nn.functional.linear(
        block.ln_1(x), block.attn.in_proj_weight, block.attn.in_proj_bias
    )
    padded = packed.new_zeros(batch * span, packed.shape[1])
    padded[real] = packed
    heads = block.attn.num_heads
    qkv = padded.view(batch, span, 3, heads, -1).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def _with_prefix(
    prefixes: _Prefixes, index: int, template_index: Tensor, k: Tensor, v: Tensor
) -> tuple[Tensor, Tensor]:
    """Each row's template prefix keys and values put before its own ``k``, ``v``."""
    k = torch.cat([prefixes.keys[index][template_index].to(k.dtype), k], dim=2)
    v = torch.cat([prefixes.values[index][template_index].to(v.dtype), v], dim=2)
    return k, v


def _mask(lengths: Tensor, longest: int, span: int) -> Tensor:
    """``[B, 1, S, Lmax + S]`` bool: a row's own token i sees its template's prefix (not the
    padding after it) and its own tokens up to i."""
    prefix = torch.arange(longest, device=lengths.device)[None, :] < lengths[:, None]  # [B, Lmax]
    causal = torch.ones(span, span, dtype=torch.bool, device=lengths.device).tril()
    batch = lengths.shape[0]
    return torch.cat(
        [prefix[:, None, None, :].expand(batch, 1, span, longest), causal.expand(batch, 1, -1, -1)],
        dim=-1,
    )
