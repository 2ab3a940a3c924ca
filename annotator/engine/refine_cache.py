"""Refined logits kept per (image, query name): re-asking known names skips PAMR's steps.

PAMR refines every row (query name) of the logits on its own, with weights that depend on the
image only, so a name refined on an image once need not be refined again: a label map drawn
from it is the same (the rows of a new query are computed in a batch of another shape, which can
change the last bits of a float32 logit, never more). The segmenter asks :class:`RefinedRows` for
the refined rows of a zero-shot query, naming each row (query name, logit scale); rows named
before on the same image are looked up, only the others are upsampled and refined. Adapted
logits (a :class:`~annotator.engine.proposal.LogitAdapter`'s) have no names and are always
refined. Memory: at most ``max_bytes`` of rows, least recently used dropped first.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
from torch import Tensor

from annotator.engine._cache import ByteLRU
from annotator.engine.protocol import upsample
from annotator.engine.refine import PAMR_STEPS, PamrKernel

#: Room for 128 rows of 512 x 512 (32 of 1 Mpx, the largest refinement size).
REFINED_BYTES = 128 << 20


class RefinedRows:
    """An LRU of refined ``[H, W]`` float32 rows keyed by (image serial, size, row name)."""

    def __init__(self, max_bytes: int = REFINED_BYTES) -> None:
        self._rows: ByteLRU[Tensor] = ByteLRU(max_bytes, lambda row: row.numel() * 4)

    def clear(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    def refine(
        self,
        image: int,
        kernel: PamrKernel,
        scaled: Tensor,
        size: tuple[int, int],
        names: Sequence[Hashable] | None = None,
    ) -> Tensor:
        """``scaled`` ``[Q, h, w]`` upsampled to ``size`` and refined with ``kernel`` (of image
        serial ``image``) -> float32 ``[Q, H, W]``. With ``names`` (one per row, what the row's
        logits are a function of on this image), rows refined before are reused."""
        if names is None:
            return kernel.propagate(upsample(scaled.float(), size), PAMR_STEPS)
        keys = [(image, size, name) for name in names]
        found = {index: self._rows.get(key) for index, key in enumerate(keys)}
        missing = [index for index, row in found.items() if row is None]
        if missing:
            fresh = kernel.propagate(upsample(scaled[missing].float(), size), PAMR_STEPS)
            for index, row in zip(missing, fresh, strict=True):
                found[index] = row.clone()
                self._rows.put(keys[index], found[index])
        return torch.stack([found[index] for index in range(len(keys))])
