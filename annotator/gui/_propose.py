"""Turning engine proposals into stored class-id maps (no Qt), and the propose-all job.

The engine answers with indices into the class strings it was given; the store keeps stable
class ids. ``to_class_ids`` maps one to the other (the background index becomes unlabeled).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotator.errors import ImageReadError
from annotator.gui._labelops import unlabeled_value
from annotator.progress import Job, Progress, ShouldStop


@dataclass(frozen=True)
class ClassQuery:
    """The classes a proposal is asked for: stable ids and their prompts ("tv; monitor")."""

    ids: tuple[int, ...]
    prompts: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.ids


def to_class_ids(indices: np.ndarray, ids: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """Map an engine ``label_map`` (``[H, W]`` indices into ``ids``; ``len(ids)`` or more =
    background) to ``[H, W]`` class ids of ``dtype`` (background -> unlabeled)."""
    size = max(int(indices.max(initial=0)) + 1, len(ids) + 1)
    lut = np.full(size, unlabeled_value(np.dtype(dtype)), dtype=dtype)
    lut[: len(ids)] = ids
    return lut[indices]


def predict_ids(
    segmenter: Any, image: np.ndarray, query: ClassQuery, adapter: Any, dtype: np.dtype
) -> tuple[np.ndarray, float]:
    """Encode ``image`` (``HxWx3 uint8``; cached by the segmenter) and return ``(class-id map,
    mean confidence)``. Call only from the engine's own thread."""
    ids, confidence, _ = predict_with_segments(segmenter, image, query, adapter, dtype)
    return ids, confidence


def predict_with_segments(
    segmenter: Any, image: np.ndarray, query: ClassQuery, adapter: Any, dtype: np.dtype
) -> tuple[np.ndarray, float, Any]:
    """:func:`predict_ids` plus the proposal's segments (a zegformer ``SegmentSet``, whose class
    indices mean ``query.ids``; None from the dense proposer)."""
    segmenter.set_image(image)
    proposal = segmenter.predict(list(query.prompts), adapter=adapter)
    ids = to_class_ids(proposal.label_map, query.ids, dtype)
    return ids, float(proposal.mean_confidence), getattr(proposal, "segments", None)


@dataclass
class ProposeAllResult:
    proposed: int
    failed: dict[str, str]


def propose_all(
    project: Any,
    segmenter: Any,
    relpaths: Sequence[str],
    query: ClassQuery,
    adapter: Any,
    should_stop: ShouldStop,
) -> Job[ProposeAllResult]:
    """Propose ``relpaths`` one by one and store each proposal; unreadable images are recorded
    (and skipped), never fatal. Stops between images when ``should_stop()``."""
    result = ProposeAllResult(0, {})
    total = len(relpaths)
    for done, relpath in enumerate(relpaths):
        if should_stop():
            break
        try:
            image = project.load_image(relpath)
        except ImageReadError as error:
            result.failed[relpath] = error.reason
            yield Progress(done + 1, total, f"Skipped {relpath}: {error.reason}")
            continue
        ids, confidence = predict_ids(segmenter, image, query, adapter, project.label_dtype)
        project.save_proposal(relpath, ids, confidence)
        result.proposed += 1
        yield Progress(done + 1, total, f"Proposed {relpath}", data=relpath)
    return result
