"""Background image loading: decode, build the display pyramid, read labels and proposal.

Decoding a 12000 x 9000 image takes about a second, so it never happens on the GUI thread. Results
come back through Qt signals; a small cache keeps recently opened images (with their undo history)
so going back and forth is instant.
"""

from __future__ import annotations

import threading
import traceback
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from annotator.errors import AnnotatorError
from annotator.gui._document import LabelDocument
from annotator.gui._labelops import empty_labels
from annotator.gui._render import build_pyramid

#: Decoded images kept in memory (current, previous and the prefetched next ones).
CACHE_PIXELS = 400_000_000


@dataclass
class ImageBundle:
    """An opened image: ``image`` ``HxWx3 uint8`` (read-only), its display pyramid, the editable
    label document and the stored proposal (``[H, W]`` class ids or ``None``). ``source`` is the
    project it was read from: a bundle arriving after another folder was opened is dropped."""

    relpath: str
    image: np.ndarray
    pyramid: list[np.ndarray]
    document: LabelDocument
    proposal: np.ndarray | None
    source: Any = None

    @property
    def pixels(self) -> int:
        return int(self.image.shape[0] * self.image.shape[1])


def load_bundle(project: Any, relpath: str) -> ImageBundle:
    """Read everything the canvas needs for ``relpath`` (call from a worker thread)."""
    image = project.load_image(relpath)
    image.flags.writeable = False  # shared with the engine thread: nobody may change it
    labels = project.load_labels(relpath)
    if labels is None:
        labels = empty_labels(image.shape[0], image.shape[1], project.label_dtype)
    proposal = project.load_proposal(relpath)
    pyramid = build_pyramid(image)
    return ImageBundle(relpath, image, pyramid, LabelDocument(labels), proposal, project)


class ImageLoader(QObject):
    """Loads bundles in a thread pool; ``loaded``/``failed`` arrive on the GUI thread, each with
    the project it was read from (it may no longer be the open one by then)."""

    loaded = Signal(object)  # ImageBundle
    failed = Signal(object, str, str, str)  # project, relpath, message, details

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotator-load")
        self._cache: OrderedDict[str, ImageBundle] = OrderedDict()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self.project: Any = None
        self._closed = False

    def cached(self, relpath: str) -> ImageBundle | None:
        bundle = self._cache.get(relpath)
        if bundle is not None:
            self._cache.move_to_end(relpath)
        return bundle

    def load(self, relpath: str) -> None:
        """Load ``relpath`` in the background unless cached or already on its way."""
        if relpath in self._cache or relpath in self._pending or self.project is None:
            return
        self._pending.add(relpath)
        project = self.project
        future = self._pool.submit(load_bundle, project, relpath)
        future.add_done_callback(lambda f, r=relpath, p=project: self._done(r, p, f))

    def _done(self, relpath: str, project: Any, future: Future) -> None:
        # Runs in the pool thread; signals cross to the GUI thread queued.
        if future.cancelled() or self._closed:
            return
        error = future.exception()
        if error is None:
            self.loaded.emit(future.result())
        else:
            details = "".join(traceback.format_exception(error))
            message = str(error) if isinstance(error, AnnotatorError) else f"{relpath}: {error}"
            self.failed.emit(project, relpath, message, details)

    def accept(self, bundle: ImageBundle, keep: set[str]) -> None:
        """Cache a loaded bundle (GUI thread); evict old ones not in ``keep`` beyond the budget."""
        self._pending.discard(bundle.relpath)
        self._cache[bundle.relpath] = bundle
        total = sum(b.pixels for b in self._cache.values())
        for relpath in list(self._cache):
            if total <= CACHE_PIXELS:
                break
            if relpath not in keep:
                total -= self._cache.pop(relpath).pixels

    def forget_failed(self, relpath: str) -> None:
        self._pending.discard(relpath)

    def clear(self, keep: str | None = None) -> None:
        """Forget cached images (all, or all but ``keep``)."""
        for relpath in list(self._cache):
            if relpath != keep:
                del self._cache[relpath]
        self._pending.clear()

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
