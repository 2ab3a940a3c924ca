"""``--preset``, ``--logit-scale``, ``--synonyms``, ``--quick-gelu``: the protocol flags of every
engine command (kept apart from ``_engine_flags`` so that file stays a short list)."""

from __future__ import annotations

import argparse
from typing import Any

from annotator.engine.config import DEFAULT_PRESET, EngineConfig

_PRESETS = "naclip-stuff, naclip-voc20, sclip-voc, sclip-stuff, clearclip, maskclip, fast"


def add_preset_arguments(group: argparse._ArgumentGroup) -> None:
    """Add the protocol flags to an argument ``group``."""
    group.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help=f"published inference protocol: {_PRESETS} (default {DEFAULT_PRESET}); other flags "
        "override it; 'annotator models presets' shows what each sets",
    )
    group.add_argument("--logit-scale", type=float, default=None, help="(default: the preset's)")
    group.add_argument(
        "--synonyms",
        choices=["max", "mean"],
        default=None,
        help="'a; b' classes: max over the names' probabilities (the references) or one "
        "averaged embedding (default: the preset's)",
    )
    gelu = group.add_mutually_exclusive_group()
    gelu.add_argument(
        "--quick-gelu",
        dest="quick_gelu",
        action="store_const",
        const=True,
        default=None,
        help="run the weights with QuickGELU (OpenAI weights need it; default: decided from "
        "open_clip_config.json beside the file, a published checksum or the tag)",
    )
    gelu.add_argument("--no-quick-gelu", dest="quick_gelu", action="store_const", const=False)


def preset_config(args: argparse.Namespace, **given: Any) -> EngineConfig:
    """The preset named by ``args.preset`` with every non-``None`` flag value on top."""
    from annotator.engine.config import templates_named
    from annotator.engine.presets import config_from_preset

    templates = getattr(args, "templates", None)
    return config_from_preset(
        getattr(args, "preset", None),
        templates=templates_named(templates) if templates else None,
        logit_scale=getattr(args, "logit_scale", None),
        synonyms=getattr(args, "synonyms", None),
        quick_gelu=getattr(args, "quick_gelu", None),
        **given,
    )
