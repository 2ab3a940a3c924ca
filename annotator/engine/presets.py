"""Published inference protocols as named presets (``--preset NAME``).

A dense head is half of a method; the published mIoU also depends on the working resolution, the
window, the prompt templates, the logit scale, the refinement and how synonyms combine. Each
preset sets exactly what its reference runs (shared/MODELS.md §7); settings given explicitly
override it. ``fast`` is not a published protocol: it trades accuracy for speed on CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotator.engine.config import DEFAULT_PRESET, EngineConfig, EngineConfigError


@dataclass(frozen=True)
class Preset:
    """``settings``: :class:`EngineConfig` field values (templates by set name); ``published``:
    the reference's figures with ViT-B/16 OpenAI weights, no training."""

    name: str
    summary: str
    settings: dict[str, Any] = field(default_factory=dict)
    published: str = ""


def _protocol(head: str, short: int, window: int, stride: int, **extra: Any) -> dict[str, Any]:
    return {
        "head": head,
        "short_side": short,
        "max_long_side": 2048,
        "window": window,
        "stride": stride if window else None,
        "templates": "imagenet",
        "logit_scale": 40.0,
        "refine": None,
        "synonyms": "max",
        "resize_filter": "bilinear",
        **extra,
    }


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "naclip-stuff",
            "NACLIP for scenes with stuff and things: slide 224/112 at 336, PAMR",
            _protocol("naclip", 336, 224, 112, refine="pamr"),
            "COCO-Stuff 25.7 mIoU",
        ),
        Preset(
            "naclip-voc20",
            "NACLIP on object-centric photos (VOC20): whole image at 336, PAMR",
            _protocol("naclip", 336, 0, 0, refine="pamr"),
            "VOC20 83.0 mIoU",
        ),
        Preset(
            "sclip-voc",
            "SCLIP on object-centric photos: slide 224/112 at 336",
            _protocol("sclip", 336, 224, 112),
            "VOC20 81.5 mIoU",
        ),
        Preset(
            "sclip-stuff",
            "SCLIP for stuff and things: slide 224/112 at 448",
            _protocol("sclip", 448, 224, 112),
            "COCO-Stuff 22.8 mIoU",
        ),
        Preset(
            "clearclip",
            "ClearCLIP: slide 448/224 at 448, logit scale 50",
            _protocol("clearclip", 448, 448, 224, logit_scale=50.0),
            "VOC20 80.9, COCO-Stuff 23.9 mIoU",
        ),
        Preset(
            "maskclip",
            "MaskCLIP as SCLIP re-evaluated it: slide 224/112 at 336",
            _protocol("maskclip", 336, 224, 112),
            "VOC20 49.5, COCO-Stuff 12.5 mIoU",
        ),
        Preset(
            "fast",
            "laptops without a GPU: NACLIP, whole image at 336, one template, no refinement",
            _protocol("naclip", 336, 0, 0, templates="single"),
            "not a published protocol (below naclip-voc20)",
        ),
    )
}

assert DEFAULT_PRESET in PRESETS


def list_presets() -> list[Preset]:
    return list(PRESETS.values())


def get_preset(name: str) -> Preset:
    """The preset ``name`` (case-insensitive); :class:`EngineConfigError` lists the choices."""
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        raise EngineConfigError(
            f"Unknown preset {name!r}; choose one of: {', '.join(PRESETS)} "
            "('annotator models presets' shows what each sets)"
        )
    return preset


def preset_settings(name: str) -> dict[str, Any]:
    """:class:`EngineConfig` keyword arguments of preset ``name`` (templates resolved)."""
    from annotator.engine.config import templates_named

    settings = dict(get_preset(name).settings)
    settings["templates"] = templates_named(settings["templates"])
    return settings


def config_from_preset(name: str | None = None, **overrides: Any) -> EngineConfig:
    """An :class:`EngineConfig` with preset ``name`` (default :data:`DEFAULT_PRESET`) and then
    every non-``None`` value of ``overrides`` on top (``pretrained="none"``: random weights)."""
    settings = preset_settings(name or DEFAULT_PRESET)
    if overrides.get("window") is not None and overrides.get("stride") is None:
        settings["stride"] = None  # a window given alone slides by half of itself
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return EngineConfig(preset=(name or DEFAULT_PRESET).strip().lower(), **settings)


def describe(preset: Preset) -> str:
    """One line per setting, e.g. ``short_side=336``, for listings."""
    return ", ".join(f"{key}={value}" for key, value in preset.settings.items())
