"""The seam between the app and the engine (no Qt). Tests monkeypatch ``create_app_segmenter``
to plant a segmenter, exactly where a user's settings choose the real one."""

from __future__ import annotations

from typing import Any

from annotator.errors import ProjectClosedError


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


def load_memory(project: Any, segmenter: Any) -> Any:
    """The project's class memory for ``segmenter``'s model, or None (no project or weights)."""
    if project is None or segmenter is None or not getattr(segmenter, "available", False):
        return None
    from annotator.engine.memory import load_project_memory

    return load_project_memory(project, segmenter)


def with_memory(project: Any, segmenter: Any, memory: Any, trained: Any) -> Any:
    """``trained`` (a LogitAdapter or None) with the class memory mixed in, when it has any."""
    if memory is None or not memory.rows:
        return trained
    from annotator.engine.memory import create_memory_adapter

    return create_memory_adapter(project, segmenter, memory, inner=trained)


def unlearned_images(project: Any, memory: Any) -> list[str]:
    """Relpaths of the project's human-labelled images that ``memory`` never learned."""
    if project is None or memory is None:
        return []
    return [
        r.relpath for r in project.list_images(has_labels=True) if r.relpath not in memory.learned
    ]


def learn(project: Any, segmenter: Any, memory: Any, relpath: str, image: Any, labels: Any) -> bool:
    """Teach ``memory`` one saved image (``HxWx3 uint8``, ``[H, W]`` class ids) and store it;
    False when nothing changed (labels already learned)."""
    from annotator.engine.memory import learn_labels, memory_folder

    updated = learn_labels(memory, segmenter, image, labels, project.unlabeled_value, relpath)
    if updated and not project.read_only:
        if project.closed:  # closed meanwhile: its lock is gone, another process may own it
            raise ProjectClosedError(f"The project {project.root} is closed; open it again.")
        memory.save(memory_folder(project))
    return bool(updated)


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
