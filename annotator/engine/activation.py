"""Which activation (QuickGELU or GELU) a local weights file needs, and why.

OpenAI's CLIP weights were trained with QuickGELU; running them with GELU silently costs mIoU.
For a local file the decision is, in order: the user's explicit choice; an
``open_clip_config.json`` beside the file (Hugging Face open_clip repos ship one; its
``model_cfg.quick_gelu`` decides); ``quick_gelu`` in a safetensors file's metadata; a published
file recognised by checksum; a ``-quickgelu``
model name; else GELU. A file whose name or metadata says OpenAI but gets GELU is warned about.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from annotator.engine.trust import PublishedFile

CONFIG_NAME = "open_clip_config.json"


@dataclass(frozen=True)
class Activation:
    """The decision: ``quick_gelu`` and a sentence saying what decided it; ``warning`` when the
    file looks like OpenAI weights but GELU is used."""

    quick_gelu: bool
    reason: str
    warning: str | None = None

    @property
    def name(self) -> str:
        return "QuickGELU" if self.quick_gelu else "GELU"


def sidecar_quick_gelu(path: Path) -> bool | None:
    """``model_cfg.quick_gelu`` of the ``open_clip_config.json`` beside ``path`` (missing key:
    False, as open_clip reads it), or ``None`` without a readable config."""
    config = path.with_name(CONFIG_NAME)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_cfg = data.get("model_cfg") if isinstance(data, dict) else None
    if not isinstance(model_cfg, dict):
        return None
    return bool(model_cfg.get("quick_gelu", False))


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (empty when not safetensors)."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 1 << 24:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def metadata_quick_gelu(path: Path) -> bool | None:
    """``quick_gelu`` recorded in a safetensors file's metadata (``annotator models convert``
    writes it), or ``None``."""
    value = str(safetensors_metadata(path).get("quick_gelu", "")).strip().lower()
    return {"true": True, "false": False}.get(value)


def says_openai(path: Path) -> bool:
    """Whether the file's name, folder or safetensors metadata mentions OpenAI."""
    text = f"{path.parent.name}/{path.name} {json.dumps(safetensors_metadata(path))}".lower()
    return "openai" in text


def decide_activation(
    model: str, path: Path, explicit: bool | None, published: PublishedFile | None
) -> Activation:
    """The activation for ``model`` loaded from the local file ``path``."""
    if explicit is not None:
        return _checked(Activation(explicit, "chosen with --quick-gelu/--no-quick-gelu"), path)
    sidecar = sidecar_quick_gelu(path)
    if sidecar is not None:
        return _checked(Activation(sidecar, f"model_cfg.quick_gelu in {CONFIG_NAME}"), path)
    recorded = metadata_quick_gelu(path)
    if recorded is not None:
        return _checked(Activation(recorded, "quick_gelu in the file's metadata"), path)
    if published is not None:
        reason = f"published weights {published.model}:{published.tag} (checksum)"
        return Activation(published.quick_gelu, reason)
    if model.endswith("quickgelu"):
        return Activation(True, f"the model name {model} says QuickGELU")
    return _checked(Activation(False, "no config, checksum or model name says QuickGELU"), path)


def _checked(activation: Activation, path: Path) -> Activation:
    if activation.quick_gelu or not says_openai(path):
        return activation
    warning = (
        f"{path.name} looks like OpenAI CLIP weights (its name or metadata says 'openai') but "
        "would run with GELU; OpenAI weights need QuickGELU. Pass --quick-gelu (or put an "
        f"{CONFIG_NAME} with model_cfg.quick_gelu beside it) unless you know it was trained "
        "with GELU."
    )
    return Activation(False, activation.reason, warning)
