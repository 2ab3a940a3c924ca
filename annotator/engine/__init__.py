"""The zero-shot proposal engine: class names typed by a user -> dense masks, no training.

A CLIP ViT (open_clip) with its last block replaced by a dense head (MaskCLIP, SCLIP, ClearCLIP,
NACLIP) gives per-patch embeddings; their cosine with the text embeddings of the class names gives
per-pixel class probabilities. See ``docs/interfaces.md`` (Engine) for the contract.

    segmenter = create_segmenter(EngineConfig())
    segmenter.set_image(image)                 # HxWx3 uint8, encoded once
    proposal = segmenter.predict(["cat", "tv; monitor"])
"""

from __future__ import annotations

from annotator.engine.config import DEFAULT_TEMPLATES, EngineConfig, EngineConfigError
from annotator.engine.heads import HEADS, list_heads
from annotator.engine.proposal import LogitAdapter, Proposal, WorkingView
from annotator.engine.segmenter import (
    EngineOutOfMemoryError,
    EngineWarning,
    Segmenter,
    create_segmenter,
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "HEADS",
    "EngineConfig",
    "EngineConfigError",
    "EngineOutOfMemoryError",
    "EngineWarning",
    "LogitAdapter",
    "Proposal",
    "Segmenter",
    "WorkingView",
    "create_segmenter",
    "list_heads",
]
