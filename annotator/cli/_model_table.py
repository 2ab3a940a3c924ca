"""open_clip's table of pretrained weights, read without importing torch (``models list``).

``import open_clip`` imports torch and every model class (10-20 s on a busy machine), just to
print a table. The table itself lives in ``open_clip/pretrained.py``, which needs only
``constants.py`` and ``version.py`` of the same package, and the architectures are JSON files in
``open_clip/model_configs``. This module loads those three files under a private package name and
reads the JSON directly; the loaded copy is only ever used to read the table, never to load
weights. If a future open_clip moves them, it falls back to the real import.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from functools import cache
from pathlib import Path
from typing import Any

_PRIVATE = "_annotator_open_clip_tables"
_VOCAB = 49408  # CLIP's BPE vocabulary: the text tower's token embedding rows


def _open_clip_dir() -> Path | None:
    spec = importlib.util.find_spec("open_clip")
    locations = None if spec is None else spec.submodule_search_locations
    return Path(next(iter(locations))) if locations else None


@cache
def pretrained_module() -> Any:
    """``open_clip.pretrained`` (loaded alone when possible; the real package otherwise)."""
    if "open_clip" in sys.modules:
        return importlib.import_module("open_clip.pretrained")
    folder = _open_clip_dir()
    if folder is None or not (folder / "pretrained.py").is_file():
        return importlib.import_module("open_clip.pretrained")
    package = types.ModuleType(_PRIVATE)
    package.__path__ = [str(folder)]
    sys.modules[_PRIVATE] = package
    # pretrained.py tries ``import safetensors.torch`` (torch!) only to load weights later;
    # a None entry makes that import fail fast, as if safetensors were absent. Undone below.
    blocked = "safetensors.torch" not in sys.modules
    if blocked:
        sys.modules["safetensors.torch"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module(f"{_PRIVATE}.pretrained")
    except Exception:  # noqa: BLE001 - layout changed: the slow, certain way
        return importlib.import_module("open_clip.pretrained")
    finally:
        if blocked:
            del sys.modules["safetensors.torch"]


def list_sources() -> list[tuple[str, str]]:
    """Every ``(model, tag)`` with known weights, as ``open_clip.list_pretrained()``."""
    return [tuple(pair) for pair in pretrained_module().list_pretrained()]


def pretrained_cfg(model: str, tag: str) -> dict:
    return pretrained_module().get_pretrained_cfg(model, tag)


@cache
def model_configs() -> dict[str, dict]:
    """Architecture name -> its JSON config (open_clip's and the engine's own)."""
    folders = [Path(__file__).resolve().parents[1] / "engine" / "model_configs"]
    folder = _open_clip_dir()
    if folder is not None:
        folders.insert(0, folder / "model_configs")
    configs: dict[str, dict] = {}
    for root in folders:
        for path in sorted(root.glob("*.json")) if root.is_dir() else []:
            try:
                configs[path.stem] = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
    return configs


def supports_dense_heads(model: str) -> bool:
    """A plain ViT image tower (same rule as ``annotator.engine.weights``), from the JSON."""
    vision = model_configs().get(model, {}).get("vision_cfg", {})
    plain = isinstance(vision.get("layers"), int) and not vision.get("timm_model_name")
    return plain and not vision.get("attentional_pool")


def estimated_bytes(model: str) -> int | None:
    """Rough size of a float32 checkpoint of ``model``: 12 * layers * width^2 per transformer,
    plus patch and token embeddings. Within ~5% for the CLIP ViTs; None if unknown."""
    config = model_configs().get(model)
    if not config:
        return None
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    try:
        v_width, t_width = int(vision["width"]), int(text.get("width", 512))
        params = (
            12 * int(vision["layers"]) * v_width**2 + 3 * int(vision["patch_size"]) ** 2 * v_width
        )
        params += 12 * int(text.get("layers", 12)) * t_width**2 + _VOCAB * t_width
    except (KeyError, TypeError, ValueError):
        return None
    return 4 * params


def weights_source(model: str, tag: str) -> Any:
    """The engine's :class:`WeightsSource` for ``model``/``tag``, from the table read above
    (what ``annotator.engine.weights.weights_source`` builds after importing open_clip)."""
    from annotator.engine import weights

    return weights._source_from_cfg(model, tag, pretrained_cfg(model, tag))  # noqa: SLF001


#: Where the weights come from; ``models info`` checks that one of them answers.
DOWNLOAD_HOSTS = ("huggingface.co", "openaipublic.azureedge.net")


def network_problem(hosts: tuple[str, ...] = DOWNLOAD_HOSTS, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to one of ``hosts`` (port 443) opens within ``timeout``
    seconds; otherwise why not (the last host's error), e.g. "cannot resolve huggingface.co"."""
    import socket

    problem = "no host to try"
    for host in hosts:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                return None
        except socket.gaierror:
            problem = f"cannot resolve {host} (no DNS)"
        except OSError as error:
            problem = f"cannot connect to {host}: {error.strerror or error}"
    return problem
