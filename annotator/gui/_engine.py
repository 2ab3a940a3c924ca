"""The seam between the app and the engine (no Qt). Tests monkeypatch ``create_app_segmenter``
to plant a segmenter, exactly where a user's settings choose the real one."""

from __future__ import annotations

from typing import Any


def create_app_segmenter(config: Any) -> Any:
    """The segmenter for ``config``; with missing weights it still returns one whose
    ``available`` is False and whose ``weights_error`` says what to do."""
    from annotator.engine import create_segmenter

    return create_segmenter(config, allow_missing_weights=True)


def load_adapter(project: Any) -> Any:
    """The project's active trained head (a LogitAdapter), or None when there is none."""
    try:
        from training import load_active_adapter
    except ImportError:
        return None
    return load_active_adapter(project)


def describe(segmenter: Any, config: Any) -> Any:
    """An EngineState for the status bar and the weights banner."""
    from annotator.gui.engine_worker import EngineState

    error = getattr(segmenter, "weights_error", None)
    device = str(getattr(segmenter, "device", getattr(config, "device", "?")))
    available = bool(getattr(segmenter, "available", True))
    random = available and getattr(config, "pretrained", "") is None
    return EngineState(
        getattr(config, "model", "?"), device, available, None if available else str(error),
        random_weights=random,
    )  # fmt: skip


def download_job(model: str, tag: str, should_stop: Any) -> Any:
    """A batch job downloading ``model``/``tag`` weights into the engine's cache (resumable);
    yields Progress, returns the file's path. Cancelling keeps the ``.part`` file for resuming."""
    import queue
    import threading

    from annotator.engine.weights import download_weights, weights_source
    from annotator.errors import JobCancelled
    from annotator.progress import Progress

    source = weights_source(model, tag)
    updates: queue.Queue[Any] = queue.Queue()

    def progress(step: Progress) -> None:
        if should_stop():
            raise JobCancelled("Download cancelled; it resumes where it stopped next time.")
        updates.put(step)

    def run() -> None:
        try:
            updates.put(("done", download_weights(source, progress=progress)))
        except BaseException as error:  # noqa: BLE001 - handed to the GUI thread below
            updates.put(("error", error))

    threading.Thread(target=run, name="annotator-download", daemon=True).start()
    while True:
        item = updates.get()
        if isinstance(item, Progress):
            yield item
        elif item[0] == "done":
            return item[1]
        else:
            raise item[1]
