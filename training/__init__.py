"""Retraining on a project's corrected labels: a light head over dense features, self-training,
held-out scores before and after, versioned checkpoints with rollback.

``training`` imports the core (``annotator.engine``/``project``/``metrics``), never Qt, and the
core never imports ``training``: the engine receives a trained head only as a ``LogitAdapter``
(:func:`load_active_adapter`). See ``docs/interfaces.md`` ("Training").
"""

from training.adapter import FusionSettings, TrainedAdapter
from training.config import TrainConfig
from training.errors import ModelVersionError, NotEnoughLabelsError, TrainingError
from training.evaluate import active_predictor, evaluate_active, evaluate_active_job
from training.job import TrainResult, train
from training.models import (
    activate_version,
    active_version,
    adapter_for_version,
    list_versions,
    load_active_adapter,
    rollback,
)
from training.versions import ModelVersion

__all__ = [
    "FusionSettings",
    "ModelVersion",
    "ModelVersionError",
    "NotEnoughLabelsError",
    "TrainConfig",
    "TrainResult",
    "TrainedAdapter",
    "TrainingError",
    "activate_version",
    "active_predictor",
    "active_version",
    "adapter_for_version",
    "evaluate_active",
    "evaluate_active_job",
    "list_versions",
    "load_active_adapter",
    "rollback",
    "train",
]
