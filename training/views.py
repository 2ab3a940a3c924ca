"""What the head sees of an image: the engine's working view, or our own when no engine runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass
class PixelView:
    """An image at working resolution with what the engine knows about it.

    Same fields as the engine's ``WorkingView``: ``image`` uint8 [h, w, 3]; ``features`` float32
    [D, gh, gw] L2-normalised dense CLIP features or None; ``zero_shot_logits`` float32 [C, h, w]
    or None (no zero-shot model); ``class_names`` the C class strings; ``original_size`` (H, W).
    """

    image: np.ndarray
    features: np.ndarray | None
    zero_shot_logits: np.ndarray | None
    class_names: list[str]
    original_size: tuple[int, int]
    patch_size: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


class _ViewRecorder:
    """A LogitAdapter that records the working view and, if given, delegates to ``inner``."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.view: PixelView | None = None

    def __call__(self, view: Any) -> np.ndarray:
        self.view = PixelView(
            image=np.array(view.image, copy=True),
            features=None if view.features is None else np.array(view.features, copy=True),
            zero_shot_logits=_zero_shot_or_none(view.zero_shot_logits),
            class_names=list(view.class_names),
            original_size=tuple(view.original_size),
        )
        if self.inner is not None:
            return self.inner(view)
        return np.asarray(view.zero_shot_logits, dtype=np.float32)


def _zero_shot_or_none(logits: np.ndarray | None) -> np.ndarray | None:
    """None when the engine has no zero-shot information (its logits are all zeros)."""
    if logits is None or not np.any(logits):
        return None
    return np.array(logits, dtype=np.float32, copy=True)


def capture_view(segmenter: Any, image: np.ndarray, class_names: list[str]) -> PixelView:
    """Run the engine once on ``image`` (uint8 [H, W, 3]) and return its working view."""
    recorder = _ViewRecorder()
    segmenter.set_image(image)
    segmenter.predict(list(class_names), adapter=recorder)
    assert recorder.view is not None, "the engine did not call its LogitAdapter"
    recorder.view.patch_size = getattr(segmenter, "patch_size", None)
    return recorder.view


def plain_view(image: np.ndarray, class_names: list[str], working_size: int) -> PixelView:
    """A view without an engine: ``image`` shrunk so its long side is at most ``working_size``."""
    height, width = image.shape[:2]
    scale = min(1.0, working_size / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return PixelView(np.ascontiguousarray(image), None, None, list(class_names), (height, width))


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map [H, W] (uint8/uint16) to ``size`` (h, w)."""
    if labels.shape[:2] == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
