"""The zegformer proposer: group pixels into class-agnostic segments, then name each segment.

Before any training the segments come from :mod:`~annotator.engine.proposers.grouping` and are
named by their CLIP score ``p'`` alone (ZegFormer-img). After retraining, a trained adapter may
carry a ``segment_model`` (:class:`SegmentModel`, from ``training.zegformer``): its mask decoder
gives the segments and its learned segment embedding the score ``p`` of each, and the two scores
are fused and calibrated as in the paper (:mod:`~annotator.engine.proposers.fusion`). The result
is an ordinary :class:`~annotator.engine.Proposal` whose ``segments`` holds the segments.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
from torch import Tensor

from annotator.engine.config import EngineConfigError
from annotator.engine.devices import autocast
from annotator.engine.output import full_resolution_labels
from annotator.engine.proposal import Proposal, WorkingView
from annotator.engine.proposers.base import ProposerInput
from annotator.engine.proposers.fusion import (
    VARIANTS,
    calibrate,
    pixel_scores,
    scores_to_probabilities,
    segment_class_scores,
)
from annotator.engine.proposers.grouping import GroupingSettings, group_image
from annotator.engine.proposers.scoring import (
    SCORES,
    class_probabilities,
    crop_embeddings,
    pooled_embeddings,
)
from annotator.engine.proposers.segments import SegmentSet


@runtime_checkable
class SegmentModel(Protocol):
    """A trained class-agnostic mask decoder with a learned segment classifier.

    ``segment(view)`` -> ``(masks, p, seen)``: masks float32 ``[N, h, w]`` in [0, 1] at the
    view's working resolution; ``p`` float32 ``[N, C]`` learned scores over ``view.class_names``
    (the "no object" column already dropped), or None when it has no classifier (then the
    engine pools its per-pixel probabilities); ``seen`` bool ``[C]`` (classes it learned).
    """

    def segment(self, view: WorkingView) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def check_settings(config: Any) -> None:
    """``EngineConfigError`` for a zegformer setting outside its choices."""
    if config.segment_score not in SCORES:
        raise EngineConfigError(
            f"Unknown segment score {config.segment_score!r}; choose {' or '.join(SCORES)}"
        )
    if config.zegformer_variant not in VARIANTS:
        raise EngineConfigError(
            f"Unknown ZegFormer variant {config.zegformer_variant!r}; choose {', '.join(VARIANTS)}"
        )
    if not 1 <= config.segments <= 256:
        raise EngineConfigError(f"segments must lie in 1..256, got {config.segments}")


def resolve_variant(requested: str, trained: bool, has_clip: bool) -> str:
    """ "auto": fused once something trained scores segments, else img (ZegFormer-img); without
    CLIP text embeddings only "seg" is possible."""
    if not has_clip:
        return "seg"
    if requested == "auto":
        return "fused" if trained else "img"
    return requested


def pooled_probabilities(logits: Tensor, masks: Tensor) -> Tensor:
    """Mask-weighted mean of the per-pixel softmax of ``logits`` ``[C, h, w]`` -> ``[N, C]``."""
    probabilities = torch.softmax(logits.float(), dim=0)
    total = torch.einsum("nhw,chw->nc", masks.to(probabilities), probabilities)
    return total / masks.flatten(1).sum(dim=1, keepdim=True).to(total).clamp_min(1e-6)


def adapter_seen(adapter: Any, names: list[str]) -> Tensor:
    """bool ``[C]``: the classes a trained adapter learned (``learned_positions``), else none."""
    seen = torch.zeros(len(names), dtype=torch.bool)
    learned = getattr(adapter, "learned_positions", None)
    if callable(learned):
        seen[list(learned(names)[1])] = True
    return seen


class ZegformerProposer:
    """Segments -> per-segment class scores -> fused, calibrated per-pixel labels.

    ``timings`` holds the seconds of the last call's "grouping", "scoring" and "fusion".
    """

    name = "zegformer"

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def propose(self, segmenter: Any, inputs: ProposerInput) -> Proposal:
        config = segmenter.config
        check_settings(config)
        start = time.perf_counter()
        masks, index, p_learned, seen = self._segments(segmenter, inputs)
        grouped = time.perf_counter()
        p_img = self._clip_scores(segmenter, inputs, masks)
        p_seg = p_learned if p_learned is not None else pooled_probabilities(inputs.class_logits(), masks)
        scored = time.perf_counter()
        trained = inputs.adapter is not None
        variant = resolve_variant(config.zegformer_variant, trained, p_img is not None)
        scores = segment_class_scores(variant, p_seg, p_img, seen, config.fusion_lambda)
        proposal = self._finish(config, inputs, masks, index, scores, seen, variant)
        done = time.perf_counter()
        self.timings = {
            "grouping": grouped - start,
            "scoring": scored - grouped,
            "fusion": done - scored,
        }
        return proposal

    def _segments(
        self, segmenter: Any, inputs: ProposerInput
    ) -> tuple[Tensor, np.ndarray, Tensor | None, Tensor]:
        """(soft masks ``[N, h, w]``, hard index int32 ``[h, w]``, learned ``p`` or None, seen)."""
        model = getattr(inputs.adapter, "segment_model", None)
        if model is None:
            settings = GroupingSettings(count=segmenter.config.segments)
            masks, index = group_image(inputs.image, inputs.features, inputs.layout.patch, settings)
            return masks, index, None, adapter_seen(inputs.adapter, inputs.names)
        masks, p, seen = model.segment(_working_view(inputs))
        masks_t = torch.from_numpy(np.asarray(masks, np.float32))
        index = masks_t.argmax(dim=0).numpy().astype(np.int32)
        seen_t = torch.from_numpy(np.asarray(seen, bool))
        p_t = None if p is None else torch.from_numpy(np.asarray(p, np.float32))
        return masks_t, index, p_t, seen_t

    def _clip_scores(self, segmenter: Any, inputs: ProposerInput, masks: Tensor) -> Tensor | None:
        """``p'`` float32 ``[N, C]``, or None without CLIP weights."""
        if inputs.features is None or inputs.text is None:
            return None
        config = segmenter.config
        if config.segment_score == "pool":
            embeddings = pooled_embeddings(inputs.features, masks, inputs.layout.patch)
        else:
            with autocast(segmenter.device, segmenter.dtype):
                embeddings = crop_embeddings(segmenter, inputs.image, inputs.layout, masks)
        text = inputs.text.to(embeddings.device)
        return class_probabilities(embeddings, text, config.logit_scale).cpu()

    def _finish(
        self,
        config: Any,
        inputs: ProposerInput,
        masks: Tensor,
        index: np.ndarray,
        scores: Tensor,
        seen: Tensor,
        variant: str,
    ) -> Proposal:
        pixel = calibrate(pixel_scores(scores, masks), seen, config.calibration_gamma)
        probabilities = scores_to_probabilities(pixel)
        threshold = config.background_threshold
        labels, confidence = full_resolution_labels(
            probabilities, inputs.layout.original, threshold
        )
        calibrated = scores.float().clone()
        calibrated[:, seen] -= config.calibration_gamma
        segments = SegmentSet(
            _original_index(index, inputs.layout.original),
            calibrated.numpy().astype(np.float32),
            list(inputs.names),
            variant,
            seen.numpy().copy(),
        )
        return Proposal(
            label_map=labels,
            confidence=confidence,
            probabilities=probabilities.numpy(),
            class_names=list(inputs.names),
            mean_confidence=float(probabilities.amax(dim=0).mean()),
            background_index=len(inputs.names) if threshold is not None else None,
            segments=segments,
        )


def _original_index(index: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the working index map to the original ``size`` -> int16."""
    small = index.astype(np.int16)
    if small.shape == tuple(size):
        return small
    return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def _working_view(inputs: ProposerInput) -> WorkingView:
    return WorkingView(
        image=inputs.image,
        features=None if inputs.features is None else inputs.features.float().cpu().numpy(),
        zero_shot_logits=inputs.class_logits().float().cpu().numpy(),
        class_names=list(inputs.names),
        text_embeddings=None if inputs.text is None else inputs.text.numpy(),
        original_size=inputs.layout.original,
    )
