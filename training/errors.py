"""Typed errors a user can cause while retraining (all are ``AnnotatorError``s)."""

from __future__ import annotations

from annotator.errors import AnnotatorError, ProjectError


class TrainingError(AnnotatorError):
    """Retraining or applying a trained model version could not be done as asked."""


class NotEnoughLabelsError(TrainingError, ProjectError):
    """The project has too few human-labelled (edited or reviewed) images to train on."""


class ModelVersionError(TrainingError):
    """A model version is missing, unreadable, or does not fit the loaded engine."""
