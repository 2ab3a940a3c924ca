"""Settings of one retraining run, as one typed dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from training.adapter import FusionSettings
from training.cagnet.settings import CaGNetSettings
from training.filters import FilterSpec
from training.fit import FitSettings


@dataclass
class TrainConfig:
    """Everything that tunes a retraining run.

    Data: ``holdout`` is the fraction of human-labelled images (imported,
    edited or reviewed) held out for evaluation (chosen once
    per project by a stable hash of the path and remembered), unless ``holdout_images`` names
    them. ``samples_per_class`` caps training pixels per class and image (class-balanced).
    ``working_size`` is the long side images are shrunk to when no engine is loaded.
    Model: ``hidden`` embedding width; ``use_clip_features`` uses the engine's dense CLIP
    features when weights are loaded; ``filter_sigmas`` the filter scales in working pixels.
    Optimiser: ``steps`` per round, ``batch_size``, ``learning_rate``, ``weight_decay``.
    Self-training (rounds after the first): per class, pixels of unlabelled images whose fused
    confidence is at least ``pseudo_min_confidence`` *and* within the top ``pseudo_top_fraction``
    of that class's predicted pixels become pseudo-labels weighted ``pseudo_weight``; at most
    ``pseudo_max_images`` images are used. Fusion: ``fusion_lambda`` and ``calibration_gamma``
    (ZegFormer's lambda and gamma).
    Generative step (CaGNet, :mod:`training.cagnet`): ``generative`` True/False, or None =
    automatic: on when some project class has no human labels and CLIP weights are loaded;
    ``cagnet`` its settings. With it, self-training pseudo-labels only the unseen classes, with
    the confidence floor ``pseudo_unseen_min_confidence`` (their rows learned from generated
    features are less sure than rows learned from labels; the top-fraction rule still applies).
    """

    rounds: int = 2
    holdout: float = 0.2
    holdout_images: tuple[str, ...] | None = None
    min_train_images: int = 1
    device: str = "auto"
    working_size: int = 512
    samples_per_class: int = 1000
    hidden: int = 64
    use_clip_features: bool = True
    filter_sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    steps: int = 300
    batch_size: int = 2048
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    pseudo_top_fraction: float = 0.5
    pseudo_min_confidence: float = 0.8
    pseudo_max_images: int = 50
    pseudo_weight: float = 0.5
    pseudo_unseen_min_confidence: float = 0.25
    fusion_lambda: float = 2 / 3
    calibration_gamma: float = 0.1
    seed: int = 0
    generative: bool | None = None
    cagnet: CaGNetSettings = field(default_factory=CaGNetSettings)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {self.rounds}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must lie in [0, 1), got {self.holdout}")
        if not 0.0 < self.pseudo_top_fraction <= 1.0:
            raise ValueError(
                f"pseudo_top_fraction must lie in (0, 1], got {self.pseudo_top_fraction}"
            )
        self.filter_sigmas = tuple(float(s) for s in self.filter_sigmas)
        if isinstance(self.cagnet, dict):
            self.cagnet = CaGNetSettings(**self.cagnet)
        if self.holdout_images is not None:
            self.holdout_images = tuple(self.holdout_images)

    @property
    def filter_spec(self) -> FilterSpec:
        return FilterSpec(self.filter_sigmas)

    @property
    def fusion(self) -> FusionSettings:
        return FusionSettings(self.fusion_lambda, self.calibration_gamma)

    def fit_settings(self, round_index: int) -> FitSettings:
        return FitSettings(
            self.steps,
            self.batch_size,
            self.learning_rate,
            self.weight_decay,
            self.seed + round_index,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
