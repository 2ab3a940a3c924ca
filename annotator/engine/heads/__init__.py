"""Dense zero-shot heads: each replaces the last transformer block of a CLIP ViT.

A head is a function ``(block, tokens [B, 1 + gh*gw, W], grid (gh, gw)) -> tokens [B, 1 + gh*gw, W]``
run in place of the last ``ResidualAttentionBlock``. Adding a head = one module + one line in
:data:`HEADS`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from annotator.engine.config import EngineConfigError
from annotator.engine.heads.clearclip import clearclip_last_block
from annotator.engine.heads.maskclip import maskclip_last_block
from annotator.engine.heads.naclip import naclip_last_block
from annotator.engine.heads.sclip import sclip_last_block

HeadFn = Callable[[nn.Module, Tensor, tuple[int, int]], Tensor]

HEADS: dict[str, HeadFn] = {
    "maskclip": maskclip_last_block,
    "sclip": sclip_last_block,
    "clearclip": clearclip_last_block,
    "naclip": naclip_last_block,
}


def list_heads() -> list[str]:
    return sorted(HEADS)


def get_head(name: str) -> HeadFn:
    """The head registered as ``name`` (case-insensitive); ``EngineConfigError`` names the choices."""
    head = HEADS.get(name.strip().lower())
    if head is None:
        raise EngineConfigError(f"Unknown head {name!r}; choose one of: {', '.join(list_heads())}")
    return head
