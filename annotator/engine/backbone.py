"""Image and text encoders the segmenter runs, and the open_clip implementations of both.

The segmenter only needs two callables: an image encoder mapping normalised pixels
``[B, 3, H, W]`` float32 (H, W multiples of ``patch_size``) to dense features
``[B, D, H / patch, W / patch]`` (not normalised), and a text encoder mapping prompts to ``[P, D]``.
Real models and the planted test models (``annotator.engine.testing``) both plug in here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from annotator.engine._packed import packing
from annotator.engine.config import EngineConfigError
from annotator.engine.heads import HeadFn, get_head
from annotator.engine.heads._attention import (
    add_mlp,
    residual_heads,
    self_attention,
    split_qkv,
    standard_block,
)

TextEncoder = Callable[[Sequence[str]], Tensor]


@dataclass
class Backbone:
    """A loaded model: dense image encoder, text encoder, and the pixel normalisation they expect.

    ``key`` identifies the weights (model name + weights source) in cache keys; ``mean``/``std``
    are per-channel RGB statistics for pixels scaled to [0, 1].
    """

    image_encoder: nn.Module
    text_encoder: TextEncoder
    patch_size: int
    embed_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    key: str

    def to(self, device: torch.device) -> None:
        """Move both encoders to ``device``."""
        self.image_encoder.to(device)
        move = getattr(self.text_encoder, "to", None)
        if callable(move):
            move(device)


def interpolate_grid_embedding(grid_embedding: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a ``[gh0, gw0, W]`` positional grid to ``[gh * gw, W]`` (bicubic, row-major)."""
    if tuple(grid_embedding.shape[:2]) == size:
        return grid_embedding.reshape(-1, grid_embedding.shape[-1])
    grid = grid_embedding.permute(2, 0, 1).unsqueeze(0).float()
    resized = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)
    return resized[0].permute(1, 2, 0).reshape(size[0] * size[1], -1).to(grid_embedding.dtype)


class ClipDenseEncoder(nn.Module):
    """An open_clip ``VisionTransformer`` whose last block is replaced by a dense zero-shot head.

    Positional embeddings are interpolated to any input grid, so any size and aspect ratio works.
    """

    def __init__(self, visual: nn.Module, head: str | HeadFn) -> None:
        super().__init__()
        _check_supported(visual)
        self.visual = visual
        self.head = get_head(head) if isinstance(head, str) else head
        self.patch_size = _pair(visual.patch_size)[0]
        self.embed_dim = int(visual.proj.shape[1])
        self._pos_cache: dict[tuple[int, int, torch.device], Tensor] = {}

    def _positions(self, grid: tuple[int, int], device: torch.device) -> Tensor:
        key = (*grid, device)
        if key not in self._pos_cache:
            pos = self.visual.positional_embedding.detach()
            gh0, gw0 = self.visual.grid_size
            patch_pos = interpolate_grid_embedding(pos[1:].reshape(gh0, gw0, -1), grid)
            self._pos_cache[key] = torch.cat([pos[:1], patch_pos], dim=0).to(device)
        return self._pos_cache[key]

    def _tokens(self, pixels: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.visual.conv1(pixels)
        grid = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        cls = self.visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self._positions(grid, x.device).to(x.dtype)
        return self.visual.ln_pre(x), grid

    def forward(self, pixels: Tensor) -> Tensor:
        """``pixels`` ``[B, 3, H, W]`` normalised -> features ``[B, D, H / p, W / p]``."""
        x, grid = self._tokens(pixels)
        blocks = self.visual.transformer.resblocks
        with packing():
            for block in blocks[:-1]:
                x = standard_block(block, x)
            x = self.head(blocks[-1], x, grid)
        x = self.visual.ln_post(x[:, 1:]) @ self.visual.proj.to(x.dtype)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *grid)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _check_supported(visual: nn.Module) -> None:
    needed = ("conv1", "class_embedding", "positional_embedding", "transformer", "ln_post", "proj")
    missing = [name for name in needed if getattr(visual, name, None) is None]
    if missing or getattr(visual, "attn_pool", None) is not None:
        raise EngineConfigError(
            f"The image tower {type(visual).__name__} is not a plain CLIP ViT "
            f"(missing {', '.join(missing) or 'nothing'}, attentional pooling "
            f"{getattr(visual, 'attn_pool', None) is not None}); dense heads need an open_clip "
            "VisionTransformer such as ViT-B-16 or ViT-L-14."
        )


class ClipTextEncoder:
    """Encodes prompts with an open_clip CLIP text tower -> ``[P, D]`` float32 (not normalised).

    The tower is causal and pools at the end-of-text token, so (1) tokens after the longest prompt
    cannot change the result and are cut, and (2) the keys and values of a template's text before
    ``{}`` ("a photo of a") are the same for every class name: they are computed once per template
    and reused, so a new name costs only its own few tokens.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[..., Tensor]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.truncate = _truncatable(model)
        self._prefixes: dict[tuple[int, ...], list[tuple[Tensor, Tensor]]] = {}

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        self._prefixes.clear()
        self.__dict__.pop("_batched_prefixes", None)

    def encode_templates(self, templates: Sequence[str], names: Sequence[str]) -> Tensor | None:
        """``[N, T, D]`` embeddings of every template with every name in one batched pass, or
        ``None`` when they cannot be batched (:mod:`annotator.engine.text_batch`)."""
        from annotator.engine.text_batch import encode_templates

        return encode_templates(self, templates, names)

    def _tokens(self, texts: Sequence[str]) -> Tensor:
        return self.tokenizer(list(texts)).to(next(self.model.parameters()).device)

    def __call__(self, prompts: Sequence[str]) -> Tensor:
        tokens = self._tokens(prompts)
        if not self.truncate:
            return self.model.encode_text(tokens).float()
        return self._encode(tokens, ()).float()

    def encode_template(self, template: str, names: Sequence[str]) -> Tensor:
        """``[N, D]`` embeddings of ``template.format(name)`` for each name, prefix reused."""
        tokens = self._tokens([template.format(name) for name in names])
        prefix = self._tokens([template.split("{}")[0].rstrip()])[0]
        prefix = tuple(prefix[: int(prefix.argmax())].tolist())  # start token + prefix words
        shared = tokens[:, : len(prefix)] == tokens.new_tensor(prefix)
        if not self.truncate or not bool(shared.all()):  # the template splits a word: no reuse
            return self([template.format(name) for name in names])
        return self._encode(tokens, prefix).float()

    def _encode(self, tokens: Tensor, prefix: tuple[int, ...]) -> Tensor:
        model, start = self.model, len(prefix)
        eot = tokens.argmax(dim=-1)
        cached = self._prefix_kv(prefix) if prefix else None
        x = model.token_embedding(tokens[:, start : int(eot.max()) + 1])
        x = x + model.positional_embedding[start : start + x.shape[1]].to(x.dtype)
        x = _causal_blocks(model.transformer.resblocks, x, cached, pooled=eot - start)
        x = model.ln_final(x[:, 0])
        proj = model.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[Tensor, Tensor]]:
        if prefix not in self._prefixes:
            model = self.model
            ids = torch.tensor([prefix], device=next(model.parameters()).device)
            x = model.token_embedding(ids) + model.positional_embedding[: len(prefix)]
            store: list[tuple[Tensor, Tensor]] = []
            _causal_blocks(model.transformer.resblocks, x, None, store)
            self._prefixes[prefix] = store
        return self._prefixes[prefix]


def _causal_blocks(
    blocks: nn.ModuleList,
    x: Tensor,
    prefix: list[tuple[Tensor, Tensor]] | None,
    store: list[tuple[Tensor, Tensor]] | None = None,
    pooled: Tensor | None = None,
) -> Tensor:
    """Run causal text blocks on ``x`` ``[N, S, W]``, after cached ``prefix`` keys/values.

    ``prefix`` holds per block ``(k, v)`` ``[1, H, L0, d]`` of the L0 tokens before ``x``; with
    ``store``, this call's own keys and values are appended to it (to build a prefix). With
    ``pooled`` (``[N]`` positions in ``x``), the last block computes only those tokens, the only
    ones read after it, and ``[N, 1, W]`` is returned (a third of the last block's work for
    3-token names).
    """
    length = x.shape[1]
    offset = prefix[0][0].shape[2] if prefix else 0
    mask = torch.ones(length, offset + length, dtype=torch.bool, device=x.device)
    mask[:, offset:] = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
    for index, block in enumerate(blocks):
        q, k, v = split_qkv(block.attn, block.ln_1(x))
        if store is not None:
            store.append((k, v))
        if prefix:
            cached_k, cached_v = prefix[index]
            k = torch.cat([cached_k.expand(x.shape[0], -1, -1, -1), k], dim=2)
            v = torch.cat([cached_v.expand(x.shape[0], -1, -1, -1), v], dim=2)
        if pooled is not None and index == len(blocks) - 1:
            rows = torch.arange(x.shape[0], device=x.device)
            q, x = q[rows, :, pooled].unsqueeze(2), x[rows, pooled].unsqueeze(1)
            mask = mask[pooled][:, None, None]
        attended = self_attention(q, k, v, mask)
        x = add_mlp(block, residual_heads(block, x, attended))
    return x


def _truncatable(model: nn.Module) -> bool:
    """Whether ``model`` is open_clip's plain CLIP text tower (causal mask, argmax pooling)."""
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    has_parts = all(getattr(model, name, None) is not None for name in needed)
    return has_parts and getattr(model, "text_pool_type", "argmax") == "argmax"
