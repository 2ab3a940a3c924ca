"""What the engine returns, and the seam through which a trained head changes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Proposal:
    """A dense proposal for one image and one list of class names.

    ``label_map``: ``[H, W]`` uint8 (uint16 beyond 255 labels) at the image's original size, each
    pixel an index into ``class_names``; when the background threshold is on, pixels whose best
    probability is below it hold ``background_index`` (= ``len(class_names)``).
    ``confidence``: ``[H, W]`` float32 in [0, 1], the best class probability per pixel.
    ``probabilities``: ``[C, h, w]`` float32 softmax over the classes at the working resolution.
    ``segments``: the zegformer proposer's :class:`~annotator.engine.proposers.segments.SegmentSet`
    (segment index map and per-segment scores); None from the dense proposer.
    """

    label_map: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray
    class_names: list[str]
    mean_confidence: float
    background_index: int | None = None
    segments: Any = None


@dataclass(frozen=True)
class WorkingView:
    """What a :class:`LogitAdapter` sees of one image and one query.

    ``image``: uint8 ``[h, w, 3]`` RGB at the working resolution. ``features``: float32
    ``[D, gh, gw]`` L2-normalised dense CLIP features on the patch grid covering the image (the grid
    may extend past the image by less than one patch at the bottom and right), or ``None`` when no
    CLIP weights are loaded. ``zero_shot_logits``: float32 ``[C, h, w]`` (logit scale included).
    ``text_embeddings``: float32 ``[C, D]`` L2-normalised, or ``None`` without weights.
    ``original_size``: ``(H, W)`` of the image the user opened.
    """

    image: np.ndarray
    features: np.ndarray | None
    zero_shot_logits: np.ndarray
    class_names: list[str]
    text_embeddings: np.ndarray | None
    original_size: tuple[int, int]


@runtime_checkable
class LogitAdapter(Protocol):
    """Replaces the zero-shot logits: returns float32 ``[C, h, w]`` for ``view``'s classes."""

    def __call__(self, view: WorkingView) -> np.ndarray: ...
