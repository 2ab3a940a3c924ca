"""The model flags shared by every command that runs the engine (propose, train, eval, ...)."""

from __future__ import annotations

import argparse

from annotator.cli._preset_flags import add_preset_arguments, preset_config
from annotator.engine.config import (
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    EngineConfig,
)

_HEADS = "naclip, sclip, clearclip, maskclip"


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--pretrained``, ``--head``, ``--device`` and the tuning flags."""
    group = parser.add_argument_group("zero-shot model")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"open_clip model name (default {DEFAULT_MODEL}; 'annotator models list' shows more)",
    )
    group.add_argument(
        "--pretrained",
        default=DEFAULT_PRETRAINED,
        metavar="TAG|FILE|none",
        help=f"weights: an open_clip tag (default {DEFAULT_PRETRAINED}), a local "
        ".safetensors/.bin/.pt file, or 'none' for random weights",
    )
    group.add_argument("--head", default=None, help=f"dense head: {_HEADS} (default: the preset's)")
    group.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    group.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    group.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    group.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="working resolution: short side in pixels (default: the preset's)",
    )
    group.add_argument(
        "--window",
        type=int,
        default=None,
        help="sliding-window size in pixels, 0 = whole image (default: the preset's)",
    )
    group.add_argument("--stride", type=int, default=None, help="sliding-window stride")
    group.add_argument(
        "--background-threshold",
        type=float,
        default=None,
        metavar="P",
        help="label pixels whose best class probability is below P as 'other'",
    )
    group.add_argument(
        "--templates",
        default=None,
        choices=["single", "ensemble", "imagenet"],
        help="prompt templates averaged per class: 1, 5, or 80 (default: the preset's)",
    )
    group.add_argument(
        "--refine",
        choices=["pamr", "none"],
        default=None,
        help="edge-aware refinement of the masks (default: the preset's)",
    )
    _add_proposer_arguments(group)
    add_preset_arguments(group)
    group.add_argument(
        "--no-download",
        action="store_true",
        help="never download weights; fail if they are not in the cache",
    )


def _add_proposer_arguments(group: argparse._ArgumentGroup) -> None:
    """``--proposer dense|zegformer`` and the zegformer settings (annotator.engine.proposers)."""
    group.add_argument(
        "--proposer",
        choices=["dense", "zegformer"],
        default="dense",
        help="dense: every pixel by its features (default); zegformer: class-agnostic segments "
        "named by CLIP",
    )
    group.add_argument(
        "--segments", type=int, default=16, help="zegformer: segments per image (default 16)"
    )
    group.add_argument(
        "--segment-score",
        choices=["pool", "crop"],
        default="pool",
        help="zegformer: name segments by mask-pooled features (pool, default) or by CLIP on "
        "each segment's masked crop (crop)",
    )
    group.add_argument(
        "--zegformer-variant",
        choices=["auto", "img", "seg", "fused"],
        default="auto",
        help="zegformer scores: img (CLIP), seg (learned), fused; auto = fused once trained",
    )


def engine_config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The :class:`EngineConfig` the flags of :func:`add_engine_arguments` describe: the preset,
    then every flag that was given."""
    return preset_config(
        args,
        model=args.model,
        pretrained=args.pretrained,
        head=args.head,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        short_side=args.short_side,
        window=args.window,
        stride=args.stride,
        background_threshold=args.background_threshold,
        refine=args.refine,
        download=not args.no_download,
        proposer=getattr(args, "proposer", "dense"),
        segments=getattr(args, "segments", 16),
        segment_score=getattr(args, "segment_score", "pool"),
        zegformer_variant=getattr(args, "zegformer_variant", "auto"),
    )
