"""Settings of the zero-shot engine, as one typed dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from annotator.errors import AnnotatorError


class EngineConfigError(AnnotatorError, ValueError):
    """A setting names something the engine does not have (model, head, device, ...)."""


#: A short ensemble from the CLIP authors' notebook: most of the gain of the 80 ImageNet
#: templates for a sixteenth of the text-encoding cost.
ENSEMBLE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a bad photo of the {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "art of the {}.",
)

#: Named template sets (``--templates NAME``); "imagenet" is open_clip's 80 ImageNet templates.
TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "single": ("a photo of a {}.",),
    "ensemble": ENSEMBLE_TEMPLATES,
}

#: One template: what the "fast" preset uses. The published protocols (and the default preset)
#: use the 80 ImageNet templates; their embeddings are cached on disk per name.
DEFAULT_TEMPLATES: tuple[str, ...] = TEMPLATE_SETS["single"]


def templates_named(name: str) -> tuple[str, ...]:
    """The template set ``name`` ("single", "ensemble", "imagenet")."""
    key = name.strip().lower()
    if key == "imagenet":
        from annotator.engine._imagenet_templates import imagenet_templates

        return imagenet_templates()  # read without importing open_clip (and torch)
    if key not in TEMPLATE_SETS:
        raise EngineConfigError(
            f"Unknown template set {name!r}; choose single, ensemble or imagenet"
        )
    return TEMPLATE_SETS[key]


DEFAULT_MODEL = "ViT-B-16"
DEFAULT_PRETRAINED = "openai"
DEFAULT_HEAD = "naclip"
#: The default inference protocol (``annotator.engine.presets``): published NACLIP for scenes
#: with stuff and things. The field defaults of :class:`EngineConfig` are this preset's values.
DEFAULT_PRESET = "naclip-stuff"
SYNONYM_RULES = ("max", "mean")
RESIZE_FILTERS = ("bilinear", "area")


def _imagenet_templates() -> tuple[str, ...]:
    return templates_named("imagenet")


@dataclass
class EngineConfig:
    """Everything that selects and tunes the zero-shot segmenter.

    ``pretrained`` is an open_clip tag (``"openai"``), a local weights file (``.safetensors``,
    ``.bin``, ``.pt``, OpenAI TorchScript archives included) or ``None``/``"none"`` for random
    weights (tests and speed measurements). Images are encoded at a working resolution whose short
    side is ``short_side`` pixels (long side capped at ``max_long_side``); ``window`` > 0 encodes
    overlapping square windows of that size with ``stride`` (default ``window // 2``) instead of the
    whole image at once. Whole-image inference over more than ``max_tokens`` patches switches to
    windows of ``short_side`` automatically, which bounds memory for any aspect ratio.

    The defaults are the preset :data:`DEFAULT_PRESET` (published NACLIP protocol: slide 224/112
    at short side 336, 80 ImageNet templates, logit scale 40, PAMR, max over a class's names).
    ``synonyms``: "max" (each name of ``"tv; monitor"`` is its own query, a class scores the max
    of its names' probabilities, as the references do) or "mean" (one averaged embedding).
    ``resize_filter``: "bilinear" (as the references resize) or "area" (less aliasing when
    shrinking large photos). ``preset`` records which preset the values came from.
    """

    model: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    head: str = DEFAULT_HEAD
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    short_side: int = 336
    max_long_side: int = 2048
    window: int = 224
    stride: int | None = 112
    max_tokens: int = 6144
    batch_size: int = 4
    templates: tuple[str, ...] = field(default_factory=_imagenet_templates)
    logit_scale: float = 40.0
    background_threshold: float | None = None
    background_name: str = "other"
    refine: str | None = "pamr"
    quick_gelu: bool | None = None
    synonyms: str = "max"
    resize_filter: str = "bilinear"
    preset: str | None = DEFAULT_PRESET
    feature_cache_mb: int = 512
    text_cache: bool = True
    cache_dir: str | None = None
    download: bool = True
    #: Which proposer turns features into a proposal: "dense" (per-pixel heads) or "zegformer"
    #: (class-agnostic segments named by CLIP; ``annotator.engine.proposers``).
    proposer: str = "dense"
    #: ZegFormer: number of segments, segment score ("pool" | "crop"), variant
    #: ("auto" | "img" | "seg" | "fused"), fusion lambda and seen-class calibration gamma.
    segments: int = 16
    segment_score: str = "pool"
    zegformer_variant: str = "auto"
    fusion_lambda: float = 2 / 3
    calibration_gamma: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.pretrained, str) and self.pretrained.strip().lower() in ("", "none"):
            self.pretrained = None
        self.templates = tuple(self.templates)
        if isinstance(self.refine, str) and self.refine.strip().lower() in ("", "none"):
            self.refine = None
        if self.synonyms not in SYNONYM_RULES:
            raise EngineConfigError(
                f"synonyms must be one of {SYNONYM_RULES}, got {self.synonyms!r}"
            )
        if self.resize_filter not in RESIZE_FILTERS:
            raise EngineConfigError(
                f"resize_filter must be one of {RESIZE_FILTERS}, got {self.resize_filter!r}"
            )
        if self.short_side < 16:
            raise EngineConfigError(f"short_side must be at least 16 pixels, got {self.short_side}")
        if self.background_threshold is not None and not 0.0 <= self.background_threshold <= 1.0:
            raise EngineConfigError(
                f"background_threshold must lie in [0, 1], got {self.background_threshold}"
            )
