"""Build a :class:`~annotator.engine.backbone.Backbone` from an :class:`EngineConfig`."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import torch

from annotator.engine.backbone import Backbone, ClipDenseEncoder, ClipTextEncoder
from annotator.engine.config import EngineConfig
from annotator.engine.text_store import TextStore
from annotator.engine.trust import NON_WEIGHT_KEYS, UntrustedWeightsError, is_torchscript_archive
from annotator.engine.weights import (
    ProgressCallback,
    ResolvedWeights,
    check_model_name,
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


#: Seed of the random initialisation used when no weights are loaded (``pretrained=None``).
RANDOM_INIT_SEED = 0


def _create_model(name: str, resolved: ResolvedWeights, cache_dir: str | None) -> torch.nn.Module:
    import open_clip

    # open_clip logs "initialized randomly" when no tag is given, even though weights follow.
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        # A fixed seed makes "--pretrained none" the same model in every process (train, then
        # eval, then propose agree), without touching the caller's random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            model = open_clip.create_model(
                name, pretrained=None, force_quick_gelu=resolved.quick_gelu
            )
    finally:
        logging.getLogger().setLevel(previous)
    if resolved.path is not None:
        try:
            _load_weights(model, resolved.path, name)
        except UntrustedWeightsError:
            raise
        except Exception as error:  # any failure to read or match the file means unusable weights
            raise missing_weights_error(
                name,
                resolved.label,
                f"the file {resolved.path} is damaged, incomplete or not {name} weights ({error}); "
                "delete it and download it again",
                cache_dir,
            ) from error
    return model


def _load_weights(model: torch.nn.Module, path: Path, name: str) -> None:
    """Load ``path`` into ``model``: open_clip's loader (safetensors, or weights-only unpickling),
    or, for a published OpenAI TorchScript archive, its state dict without the non-weight entries.

    The archive's bytes are checksummed and loaded from the same copy in memory, so the file
    cannot be swapped between the check and the load.
    """
    import io

    import open_clip
    from open_clip.model import resize_pos_embed

    from annotator.engine.trust import published_checksums, refusal

    if not is_torchscript_archive(path):
        open_clip.load_checkpoint(model, str(path), weights_only=True)
        return
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() not in published_checksums():
        raise refusal(path, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated, still the reader
        state = torch.jit.load(io.BytesIO(data), map_location="cpu").state_dict()
    for key in NON_WEIGHT_KEYS:
        state.pop(key, None)
    resize_pos_embed(state, model)
    model.load_state_dict(state, strict=True)


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
        key=f"{config.model}|{resolved.identity or resolved.label}|quick_gelu={resolved.quick_gelu}",
    )


def text_store_for(config: EngineConfig, backbone: Backbone) -> TextStore:
    """The on-disk text-embedding cache of ``backbone`` with ``config.templates``."""
    from annotator.engine.weights import cache_root

    root = Path(config.cache_dir) if config.cache_dir else cache_root()
    return TextStore(root / "text", backbone.key, config.templates, backbone.embed_dim)
