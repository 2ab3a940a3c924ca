"""Proposers: how a segmenter turns encoded features into a :class:`~annotator.engine.Proposal`.

``dense`` labels every pixel by its own features (today's heads path); ``zegformer`` groups the
image into class-agnostic segments and names each segment with CLIP (seed paper 001, MODELS.md
section 2). Both return the same ``Proposal``, so the GUI, the proposal store, trained adapters
and exports work unchanged with either; ``zegformer`` also fills ``Proposal.segments``.
Adding a proposer = one module + one line in :data:`PROPOSERS`.
"""

from __future__ import annotations

import importlib
from typing import Any

from annotator.engine.config import EngineConfigError

#: name -> "module:class" (imported on first use, so ``import annotator.engine`` stays light).
PROPOSERS: dict[str, str] = {
    "dense": "annotator.engine.proposers.dense:DenseProposer",
    "zegformer": "annotator.engine.proposers.zegformer:ZegformerProposer",
}


#: How the zegformer proposer names a segment (``EngineConfig.segment_score``).
SEGMENT_SCORES = ("pool", "crop")


def list_proposers() -> list[str]:
    return sorted(PROPOSERS)


def get_proposer(name: str) -> Any:
    """A new proposer registered as ``name`` (case-insensitive); ``EngineConfigError`` otherwise."""
    target = PROPOSERS.get(str(name).strip().lower())
    if target is None:
        raise EngineConfigError(
            f"Unknown proposer {name!r}; choose one of: {', '.join(list_proposers())}"
        )
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()
