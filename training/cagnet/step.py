"""The generative step as the retraining job uses it: collect, then fit once per round."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import torch

from annotator.progress import Progress, ShouldStop
from training.cagnet.data import GenerativeData, image_maps
from training.cagnet.fit import fit_generative
from training.cagnet.settings import CaGNetSettings
from training.errors import TrainingError
from training.fit import SampleSet
from training.head import PixelHead

#: Full-resolution pixels kept per class and image for the generator to imitate.
_PIXELS_PER_CLASS = 300

NEEDS_TEXT = (
    "The generative step (CaGNet) needs the CLIP text embeddings of the class names, but no CLIP "
    "weights are loaded: load a model (e.g. --model/--pretrained), or retrain without it "
    "(--no-generative)."
)


def class_text_embeddings(
    segmenter: Any, class_ids: Sequence[int], prompts: Sequence[str]
) -> dict[int, np.ndarray] | None:
    """{class id: float32 [T] L2-normalised text embedding}, or None without CLIP weights."""
    if segmenter is None or not getattr(segmenter, "available", False):
        return None
    rows = np.asarray(segmenter.encode_text(list(prompts)), dtype=np.float32)
    return {int(c): rows[i] for i, c in enumerate(class_ids)}


class GenerativeStep:
    """Collects the training images' maps (:meth:`add_image`), then teaches each round's head
    the unseen classes (:meth:`fit`)."""

    def __init__(self, text: dict[int, np.ndarray], settings: CaGNetSettings, seed: int) -> None:
        self.data = GenerativeData(text)
        self.settings = settings
        self.seed = seed
        self.rng = np.random.default_rng(seed + 7919)

    @classmethod
    def create(
        cls, wanted: bool | None, segmenter: Any, class_ids: Sequence[int],
        prompts: Sequence[str], settings: CaGNetSettings, seed: int,
    ) -> GenerativeStep | None:  # fmt: skip
        """The step, or None when ``wanted`` is False or (``wanted`` None: automatic) no text
        embeddings exist; :class:`TrainingError` when asked for (True) without CLIP weights."""
        if wanted is False:
            return None
        text = class_text_embeddings(segmenter, class_ids, prompts)
        if text is None:
            if wanted:
                raise TrainingError(NEEDS_TEXT)
            return None
        return cls(text, settings, seed)

    def add_image(self, view: Any, filters: np.ndarray, targets: np.ndarray) -> None:
        """Keep one human-labelled view (``targets`` int64 [h, w] class ids, -1 = none)."""
        self.data.add(self.maps_of(view, filters, targets, self.rng))

    @staticmethod
    def maps_of(
        view: Any, filters: np.ndarray, targets: np.ndarray, rng: np.random.Generator
    ) -> Any:
        """What :meth:`add_image` keeps of one view, drawn with ``rng`` (None without CLIP
        features); for the training job to compute on any process and add in image order."""
        if view.features is None:
            return None
        return image_maps(view, filters, targets, _PIXELS_PER_CLASS, rng)

    def fit(
        self, head: PixelHead, samples: SampleSet, unseen: Sequence[int], round_index: int,
        should_stop: ShouldStop, device: torch.device,
    ) -> Generator[Progress, None, PixelHead]:  # fmt: skip
        """:func:`fit_generative` on ``head`` for the ``unseen`` class ids."""
        if not self.data.images:
            raise TrainingError(
                "The generative step found no labelled image with CLIP features; retrain with "
                "--no-generative."
            )
        data = {"round": round_index + 1}
        return (
            yield from fit_generative(
                head, self.data, samples, tuple(unseen), self.settings, should_stop, device,
                self.seed + round_index, data,
            )
        )  # fmt: skip
