"""The zero-shot proposal engine: class names typed by a user -> dense masks, no training.

A CLIP ViT (open_clip) with its last block replaced by a dense head (MaskCLIP, SCLIP, ClearCLIP,
NACLIP) gives per-patch embeddings; their cosine with the text embeddings of the class names gives
per-pixel class probabilities. See ``docs/interfaces.md`` (Engine) for the contract.

    segmenter = create_segmenter(EngineConfig())
    segmenter.set_image(image)                 # HxWx3 uint8, encoded once
    proposal = segmenter.predict(["cat", "tv; monitor"])

Names are imported lazily so that ``import annotator.engine`` (and the CLI's ``--help``) does not
load torch until something that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from annotator.engine.config import (
    DEFAULT_TEMPLATES,
    TEMPLATE_SETS,
    EngineConfig,
    EngineConfigError,
    templates_named,
)
from annotator.engine.proposal import LogitAdapter, Proposal, WorkingView

if TYPE_CHECKING:
    from annotator.engine.heads import HEADS, list_heads
    from annotator.engine.segmenter import (
        EngineOutOfMemoryError,
        EngineWarning,
        Segmenter,
        create_segmenter,
    )

_LAZY = {
    "HEADS": "annotator.engine.heads",
    "list_heads": "annotator.engine.heads",
    "EngineOutOfMemoryError": "annotator.engine.segmenter",
    "EngineWarning": "annotator.engine.segmenter",
    "Segmenter": "annotator.engine.segmenter",
    "create_segmenter": "annotator.engine.segmenter",
}

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
    "TEMPLATE_SETS",
    "WorkingView",
    "create_segmenter",
    "list_heads",
    "templates_named",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'annotator.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
