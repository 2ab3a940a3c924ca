"""What every proposer receives from the segmenter for one ``predict`` call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from annotator.engine.features import Layout
from annotator.engine.protocol import Groups, class_logits


@dataclass(frozen=True)
class ProposerInput:
    """One image and one class query, as the segmenter has computed them.

    ``image``: uint8 ``[h, w, 3]`` RGB at the working resolution. ``features``: float32
    ``[D, gh, gw]`` L2-normalised dense features on the patch grid of the padded working image, or
    None without CLIP weights. ``text``: float32 ``[C, D]`` L2-normalised class embeddings (CPU) or
    None. ``logits``: float32 ``[Q, h, w]`` per-pixel logits times the logit scale, one row per
    query name (zero-shot), or ``[C, h, w]`` per class (the adapter's when one was given);
    ``groups`` lists each class's rows of ``logits`` (None: one row per class).
    :meth:`class_logits` gives ``[C, h, w]`` either way. ``state`` is the segmenter's private
    image state (for the dense proposer).
    """

    image: np.ndarray
    features: Tensor | None
    layout: Layout
    names: list[str]
    text: Tensor | None
    logits: Tensor
    adapter: Callable | None
    state: Any = None
    groups: Groups = None

    def class_logits(self) -> Tensor:
        """float32 ``[C, h, w]``: the max over each class's query rows (the "max" synonym rule)."""
        return class_logits(self.logits, self.groups)
