"""open_clip's 80 ImageNet prompt templates, read without importing open_clip (or torch).

``from open_clip.zero_shot_metadata import ...`` runs ``open_clip/__init__.py`` first, which
imports torch, torchvision and every model class: 6-16 s on a busy machine. Every
:class:`~annotator.engine.config.EngineConfig` needs the templates, and the app builds one on
the GUI thread when a folder opens, so that import froze the window for as long. The templates
are plain data in ``zero_shot_metadata.py`` (a module without imports); this loads that one file
on its own. If a future open_clip moves or changes it, it falls back to the real import.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path

_PRIVATE = "_annotator_open_clip_zero_shot_metadata"


def _metadata_file() -> Path | None:
    spec = importlib.util.find_spec("open_clip")  # finds the package without running it
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        return None
    path = Path(next(iter(locations))) / "zero_shot_metadata.py"
    return path if path.is_file() else None


def _load_alone(path: Path) -> tuple:
    spec = importlib.util.spec_from_file_location(_PRIVATE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.OPENAI_IMAGENET_TEMPLATES)


@cache
def imagenet_templates() -> tuple[str, ...]:
    """The 80 templates as format strings with one ``{}`` for the class name, in open_clip's
    order (``"a bad photo of a {}."``, ...)."""
    path = None if "open_clip" in sys.modules else _metadata_file()
    try:
        if path is None:
            raise ImportError("open_clip's zero_shot_metadata.py was not found")
        templates = _load_alone(path)
    except Exception:  # noqa: BLE001 - the layout changed: the slow, certain way
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        templates = tuple(OPENAI_IMAGENET_TEMPLATES)
    return tuple(template("{}") for template in templates)
