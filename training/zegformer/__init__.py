"""ZegFormer's trained parts (seed paper 001): a class-agnostic mask decoder over the engine's
dense features + filter features, with a learned segment embedding compared to the class text
embeddings and a "no object" embedding (temperature 0.01). Trained during retraining when the
proposer is "zegformer" (Hungarian matching to human segments, dice + focal + class loss), kept
in the model version, and handed to the engine as ``adapter.segment_model``.
"""

from __future__ import annotations

from training.zegformer.decoder import DecoderSpec, MaskDecoder
from training.zegformer.fit import DecoderSettings, fit_decoder
from training.zegformer.metrics import best_match_ious, mean_best_match_iou
from training.zegformer.model import (
    TrainedSegments,
    attach_segment_model,
    load_segment_model,
    read_report,
)
from training.zegformer.retrain import train_for_version

__all__ = [
    "DecoderSettings",
    "DecoderSpec",
    "MaskDecoder",
    "TrainedSegments",
    "attach_segment_model",
    "best_match_ious",
    "fit_decoder",
    "load_segment_model",
    "mean_best_match_iou",
    "read_report",
    "train_for_version",
]
