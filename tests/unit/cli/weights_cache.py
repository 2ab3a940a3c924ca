"""A machine whose cache holds the default CLIP weights, for tests that plant the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotator.cli._weights_check import table_source
from annotator.engine import weights
from annotator.engine.config import DEFAULT_MODEL, DEFAULT_PRETRAINED


def pretend_default_weights_are_cached(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Point the cache at ``folder`` and put a placeholder for the default weights file there.

    The commands look in the cache before they import torch; a planted segmenter then stands for
    the model, so nothing ever reads the placeholder's bytes. Returns the placeholder's path."""
    monkeypatch.setenv("ANNOTATOR_CACHE_DIR", str(folder))
    source = table_source(DEFAULT_MODEL, DEFAULT_PRETRAINED)
    assert source is not None
    target = weights.cached_weights_folder(source) / source.hf_filenames[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"placeholder: a planted segmenter replaces the model")
    return target
