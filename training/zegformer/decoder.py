"""A small class-agnostic mask decoder with a learned segment embedding (ZegFormer, seed 001).

Pixel embeddings ``F`` (hidden x h x w) come from the filter features (full resolution) plus the
dense CLIP features (patch grid, projected then upsampled), at ``1 / stride`` of the working
resolution. ``Q`` learned queries attend to a pooled copy of ``F`` (two cross-attention layers);
each query then gives a mask embedding ``B_q`` (mask logits ``B_q . F``, ``m_q = sigmoid``) and a
segment embedding ``G_q`` in the CLIP text space. ``p_q(c)`` is the softmax over
``cos(G_q, T_c) / tau`` for the class text embeddings ``T_c`` and a learned "no object" embedding
``T_0``, ``tau = 0.01``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: ZegFormer's temperature of the segment classifier.
TEMPERATURE = 0.01
#: Key/value tokens the queries attend to: F pooled to at most this many cells per side.
_MEMORY_SIDE = 16


@dataclass(frozen=True)
class DecoderSpec:
    """Shape of a decoder: input widths, embedding width, queries, text width (0: no classifier),
    and the ``stride`` of its mask resolution relative to the working image."""

    filter_channels: int
    clip_channels: int
    hidden: int = 32
    queries: int = 8
    text_channels: int = 0
    stride: int = 2

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DecoderSpec:
        return cls(**{k: int(v) for k, v in data.items()})


class _CrossLayer(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(hidden, 4, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden)
        )

    def forward(self, queries: Tensor, memory: Tensor) -> Tensor:
        attended, _ = self.attn(queries, memory, memory, need_weights=False)
        queries = self.norm1(queries + attended)
        return self.norm2(queries + self.ffn(queries))


class MaskDecoder(nn.Module):
    """(filters ``[Ff, h, w]``, clip ``[D, gh, gw]`` or None) -> (mask logits ``[Q, h', w']``,
    segment embeddings ``[Q, T]`` or None), ``h' = ceil(h / stride)``."""

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        self.spec = spec
        hidden = spec.hidden
        self.register_buffer("filter_mean", torch.zeros(spec.filter_channels))
        self.register_buffer("filter_std", torch.ones(spec.filter_channels))
        self.filter_proj = nn.Conv2d(spec.filter_channels, hidden, 1)
        self.clip_proj = nn.Conv2d(spec.clip_channels, hidden, 1) if spec.clip_channels else None
        self.pixel = nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 1))
        self.queries = nn.Parameter(torch.randn(spec.queries, hidden) * 0.5)
        self.position = nn.Parameter(torch.zeros(1, hidden, _MEMORY_SIDE, _MEMORY_SIDE))
        self.layers = nn.ModuleList([_CrossLayer(hidden), _CrossLayer(hidden)])
        self.mask_embed = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        text = spec.text_channels
        self.segment_embed = nn.Linear(hidden, text) if text else None
        self.no_object = nn.Parameter(torch.randn(text) * 0.1) if text else None

    def set_normalisation(self, filter_samples: Tensor) -> None:
        """Standardise filters with the mean/std of ``filter_samples`` float32 ``[N, Ff]``."""
        self.filter_mean.copy_(filter_samples.mean(0))
        self.filter_std.copy_(filter_samples.std(0).clamp_min(1e-6))

    def pixel_embeddings(self, filters: Tensor, clip: Tensor | None) -> Tensor:
        """``[hidden, h', w']`` at ``1 / stride`` of the filters' ``[Ff, h, w]`` resolution."""
        x = (filters - self.filter_mean[:, None, None]) / self.filter_std[:, None, None]
        x = F.avg_pool2d(x[None], self.spec.stride, ceil_mode=True)
        hidden = self.filter_proj(x)
        if self.clip_proj is not None and clip is not None:
            projected = self.clip_proj(clip[None].float())
            hidden = hidden + F.interpolate(projected, size=hidden.shape[2:], mode="bilinear")
        return self.pixel(hidden)[0]

    def forward(self, filters: Tensor, clip: Tensor | None) -> tuple[Tensor, Tensor | None]:
        pixels = self.pixel_embeddings(filters, clip)
        pooled = F.adaptive_avg_pool2d(pixels[None], _MEMORY_SIDE) + self.position
        memory = pooled.flatten(2).transpose(1, 2)  # [1, S*S, hidden]
        queries = self.queries[None]
        for layer in self.layers:
            queries = layer(queries, memory)
        queries = queries[0]
        masks = torch.einsum("qd,dhw->qhw", self.mask_embed(queries), pixels)
        embeddings = self.segment_embed(queries) if self.segment_embed is not None else None
        return masks, embeddings

    def class_logits(self, embeddings: Tensor, text: Tensor) -> Tensor:
        """``[Q, C + 1]``: ``cos(G_q, T_c) / tau`` for ``text`` ``[C, T]``, then "no object"."""
        targets = torch.cat([text.float(), self.no_object[None]], dim=0)
        cosine = F.normalize(embeddings, dim=-1) @ F.normalize(targets, dim=-1).T
        return cosine / TEMPERATURE
