"""What every proposer receives from the segmenter for one ``predict`` call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from annotator.engine.features import Layout


@dataclass(frozen=True)
class ProposerInput:
    """One image and one class query, as the segmenter has computed them.

    ``image``: uint8 ``[h, w, 3]`` RGB at the working resolution. ``features``: float32
    ``[D, gh, gw]`` L2-normalised dense features on the patch grid of the padded working image, or
    None without CLIP weights. ``text``: float32 ``[C, D]`` L2-normalised class embeddings (CPU) or
    None. ``logits``: float32 ``[C, h, w]`` per-pixel logits (zero-shot, or the adapter's when one
    was given). ``state`` is the segmenter's private image state (for the dense proposer).
    """

    image: np.ndarray
    features: Tensor | None
    layout: Layout
    names: list[str]
    text: Tensor | None
    logits: Tensor
    adapter: Callable | None
    state: Any = None
