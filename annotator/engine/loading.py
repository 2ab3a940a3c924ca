"""Build a :class:`~annotator.engine.backbone.Backbone` from an :class:`EngineConfig`."""

from __future__ import annotations

import logging

import torch

from annotator.engine.backbone import Backbone, ClipDenseEncoder, ClipTextEncoder
from annotator.engine.config import EngineConfig
from annotator.engine.weights import (
    ProgressCallback,
    ResolvedWeights,
    check_model_name,
    is_torchscript_archive,
    missing_weights_error,
    resolve_weights,
)


def load_backbone(
    config: EngineConfig, device: torch.device, progress: ProgressCallback | None = None
) -> Backbone:
    """Create the open_clip model ``config.model`` with its weights, on ``device``.

    Raises :class:`WeightsUnavailableError` when the weights are missing or unreadable and
    :class:`EngineConfigError` for an unknown model or head.
    """
    check_model_name(config.model)
    resolved = resolve_weights(
        config.model,
        config.pretrained,
        config.quick_gelu,
        config.cache_dir,
        config.download,
        progress,
    )
    model = _create_model(config.model, resolved, config.cache_dir)
    model.eval().requires_grad_(False).to(device)
    return _wrap(model, config, resolved)


def _create_model(name: str, resolved: ResolvedWeights, cache_dir: str | None) -> torch.nn.Module:
    import open_clip

    # open_clip logs "initialized randomly" when no tag is given, even though weights follow.
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        model = open_clip.create_model(name, pretrained=None, force_quick_gelu=resolved.quick_gelu)
    finally:
        logging.getLogger().setLevel(previous)
    if resolved.path is not None:
        try:
            # OpenAI's TorchScript archives need the TorchScript loader; everything else is read
            # with the safe (weights-only) unpickler.
            weights_only = not is_torchscript_archive(resolved.path)
            open_clip.load_checkpoint(model, str(resolved.path), weights_only=weights_only)
        except Exception as error:  # any failure to read or match the file means unusable weights
            raise missing_weights_error(
                name,
                resolved.label,
                f"the file {resolved.path} is damaged, incomplete or not {name} weights ({error}); "
                "delete it and download it again",
                cache_dir,
            ) from error
    return model


def _wrap(model: torch.nn.Module, config: EngineConfig, resolved: ResolvedWeights) -> Backbone:
    import open_clip

    encoder = ClipDenseEncoder(model.visual, config.head)
    text = ClipTextEncoder(model, open_clip.get_tokenizer(config.model))
    return Backbone(
        image_encoder=encoder,
        text_encoder=text,
        patch_size=encoder.patch_size,
        embed_dim=encoder.embed_dim,
        mean=resolved.mean,
        std=resolved.std,
        key=f"{config.model}|{resolved.label}|quick_gelu={resolved.quick_gelu}",
    )
