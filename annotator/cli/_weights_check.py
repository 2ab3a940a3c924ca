"""Check a command's CLIP weights before torch is imported.

Importing torch and open_clip takes 5-10 s; a command whose weights are missing (no network, a
mistyped file) should say so in a second. :func:`check_weights` finds the weights as the engine
would (our cache, the Hugging Face cache, a local file), downloads them through the engine's own
download when that is allowed, and raises the engine's own :class:`WeightsUnavailableError`
(same message, same fixes) when they cannot be had. The engine still checks and loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from annotator.engine import weights


def table_source(model: str, tag: str) -> weights.WeightsSource | None:
    """``model``/``tag`` in open_clip's table of weights, read without torch; None when the table
    does not know them (the engine then names the unknown model or tag) or cannot be read."""
    from annotator.cli import _model_table

    try:
        cfg = _model_table.pretrained_cfg(model, tag)
    except Exception:  # noqa: BLE001 - an odd open_clip: leave the verdict to the engine
        return None
    return weights._source_from_cfg(model, tag, cfg) if cfg else None  # noqa: SLF001


def check_weights(config: Any, progress: weights.ProgressCallback | None = None) -> None:
    """Raise the :class:`WeightsUnavailableError` the engine would raise for ``config``'s
    weights (an ``EngineConfig``), without importing torch; downloads them into the cache first
    when ``config.download`` allows (``progress`` gets the bytes). Returns when they are there,
    for random weights (``pretrained=None``), and when the table does not know the model."""
    tag = config.pretrained
    if tag is None:
        return
    if weights.looks_like_path(tag):
        weights.check_weights_file(config.model, Path(tag).expanduser(), config.cache_dir)
        return
    source = table_source(config.model, tag)
    if source is not None:
        weights.find_or_download(source, config.cache_dir, config.download, progress)


def weights_problem(config: Any, progress: weights.ProgressCallback | None = None) -> Any:
    """The error of :func:`check_weights`, or None when the engine may go on."""
    from annotator.errors import WeightsUnavailableError

    try:
        check_weights(config, progress)
    except WeightsUnavailableError as error:
        return error
    return None
