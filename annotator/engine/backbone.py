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

from annotator.engine.heads import HeadFn, get_head
from annotator.engine.heads._attention import standard_block

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
        raise ValueError(
            f"The image tower {type(visual).__name__} is not a plain CLIP ViT "
            f"(missing {', '.join(missing) or 'nothing'}, attentional pooling "
            f"{getattr(visual, 'attn_pool', None) is not None}); dense heads need an open_clip "
            "VisionTransformer such as ViT-B-16 or ViT-L-14."
        )


class ClipTextEncoder:
    """Encodes prompts with an open_clip CLIP text tower -> ``[P, D]`` float32 (not normalised).

    The tower is causal and pools at the end-of-text token, so tokens after the longest prompt
    cannot change the result: sequences are cut there, which makes short names ~7x cheaper.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[..., Tensor]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.truncate = _truncatable(model)

    def to(self, device: torch.device) -> None:
        self.model.to(device)

    def __call__(self, prompts: Sequence[str]) -> Tensor:
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(list(prompts)).to(device)
        if not self.truncate:
            return self.model.encode_text(tokens).float()
        return self._encode_truncated(tokens).float()

    def _encode_truncated(self, tokens: Tensor) -> Tensor:
        model = self.model
        eot = tokens.argmax(dim=-1)
        length = int(eot.max()) + 1
        x = model.token_embedding(tokens[:, :length])
        x = x + model.positional_embedding[:length].to(x.dtype)
        x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
        x = model.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        proj = model.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def _truncatable(model: nn.Module) -> bool:
    """Whether ``model`` is open_clip's plain CLIP text tower (causal mask, argmax pooling)."""
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    has_parts = all(getattr(model, name, None) is not None for name in needed)
    return has_parts and getattr(model, "text_pool_type", "argmax") == "argmax"
