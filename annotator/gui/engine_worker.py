"""The one long-lived worker that owns the segmenter (a QObject living in its own QThread).

The GUI thread only calls the thread-safe request methods (:meth:`EngineWorker.request`,
:meth:`prefetch`, :meth:`cancel`, :meth:`configure`, :meth:`start_batch`); they queue work and
wake the worker. The worker runs, in this order of priority: a configuration change, the newest
interactive request (older ones are dropped as stale), one step of a batch job, one prefetch.
Results come back as numpy through signals; every exception comes back as ``failed``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from annotator.errors import AnnotatorError, ProjectClosedError
from annotator.gui import _engine
from annotator.gui._propose import ClassQuery, predict_with_segments, propose_all
from annotator.progress import Progress


@dataclass
class ProposalRequest:
    """Propose ``image`` (``HxWx3 uint8``, not modified by anyone) for ``query``.

    ``save`` stores the result in ``project`` as the image's proposal (from the worker thread;
    the store is thread-safe). ``prefetch`` requests run only when nothing else waits.
    """

    id: int
    relpath: str
    image: np.ndarray
    query: ClassQuery
    dtype: np.dtype
    save: bool = True
    prefetch: bool = False
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class ProposalResult:
    id: int
    relpath: str
    query: ClassQuery
    label_map: np.ndarray  # [H, W] class ids, unlabeled = dtype max
    mean_confidence: float
    seconds: float  # engine time
    prefetch: bool
    submitted: float
    segments: Any = None  # zegformer SegmentSet (class indices mean query.ids) or None


@dataclass
class EngineState:
    model: str
    device: str
    available: bool
    error: str | None = None  # why proposals are unavailable, for the banner
    details: str = ""
    random_weights: bool = False  # loaded without pretrained weights: masks are meaningless


class EngineWorker(QObject):
    proposal_ready = Signal(object)  # ProposalResult
    failed = Signal(int, str, str)  # request id (0 = not a request), message, details
    state_changed = Signal(object)  # EngineState
    batch_progress = Signal(object)  # Progress
    batch_finished = Signal(object, bool)  # job result or None, cancelled
    adapter_changed = Signal()  # the trained head was reloaded: proposals need refreshing
    memory_changed = Signal(object, bool)  # {class id: labelled images}, learned just now
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._config: Any = None
        self._new_config: Any = None
        self._project: Any = None
        self._segmenter: Any = None
        self._adapter: Any = None  # the trained head (LogitAdapter) or None
        self._memory: Any = None  # the project's ClassMemory (annotator.engine.memory) or None
        # relpath: (image, labels, the project they were saved in)
        self._learn: dict[str, tuple[np.ndarray, np.ndarray, Any]] = {}
        self._catch_up: deque[str] = deque()  # labelled images the memory never learned
        self._interactive: ProposalRequest | None = None
        self._prefetch: deque[ProposalRequest] = deque()
        self._cancelled: set[int] = set()
        self._batch: Generator[Progress, None, Any] | None = None
        self._batch_stop = threading.Event()
        self._pending_batch: tuple[Callable[..., Any], bool, Any] | None = None
        self._reload_adapter = False
        self._niced = False
        self._wake.connect(self._drain)

    # -- GUI-thread API (thread-safe) -----------------------------------------------------------

    def configure(self, config: Any, project: Any = None) -> None:
        """Load the segmenter for ``config`` (an EngineConfig) and the project's trained head."""
        with self._lock:
            self._new_config = (config, project)
        self._wake.emit()

    def request(self, request: ProposalRequest) -> None:
        """Ask for a proposal now; a waiting older interactive request is dropped as stale."""
        with self._lock:
            self._interactive = request
        self._wake.emit()

    def prefetch(self, requests: list[ProposalRequest]) -> None:
        """Replace the background queue: propose these when idle, so moving on is instant."""
        with self._lock:
            self._prefetch = deque(requests)
        self._wake.emit()

    def reload_adapter(self) -> None:
        """Load the project's active trained head again (after retraining or a rollback)."""
        with self._lock:
            self._reload_adapter = True
        self._wake.emit()

    def learn(self, relpath: str, image: np.ndarray, labels: np.ndarray, project: Any) -> None:
        """Teach the class memory the labels (``[H, W]`` class ids, not modified by anyone
        afterwards) of ``image`` saved in ``project``; runs before the next proposal, so it
        already uses them. Labels of a project that is no longer the loaded one teach nothing
        (another folder was opened meanwhile: its class ids mean other classes)."""
        with self._lock:
            self._learn[relpath] = (image, labels, project)
        self._wake.emit()

    def cancel(self, request_id: int) -> None:
        with self._lock:
            self._cancelled.add(request_id)
            if self._interactive is not None and self._interactive.id == request_id:
                self._interactive = None

    def start_batch(
        self, factory: Callable[..., Any], needs_model: bool = True, project: Any = None
    ) -> None:
        """Run ``factory(project, segmenter, adapter, should_stop)`` step by step in this thread.

        ``needs_model``: refuse without usable weights (propose-all); otherwise the job gets
        ``None`` as segmenter when the CLIP weights are missing (retraining on colour features).
        ``project``: the project the job was asked for (None: the loaded one); when another
        one is loaded by the time it starts, it ends at once, cancelled, and runs on neither.
        """
        self._batch_stop.clear()
        with self._lock:
            self._pending_batch = (factory, needs_model, project)
        self._wake.emit()

    def stop_batch(self) -> None:
        self._batch_stop.set()

    # -- worker thread ---------------------------------------------------------------------------

    @Slot()
    def _drain(self) -> None:
        if not self._niced:
            self._niced = True
            _lower_thread_priority()
        while True:
            with self._lock:
                config, self._new_config = self._new_config, None
                interactive, self._interactive = self._interactive, None
                factory, self._pending_batch = self._pending_batch, None
                reload, self._reload_adapter = self._reload_adapter, False
                learns, self._learn = self._learn, {}
                prefetch = None
                if (
                    config is None
                    and interactive is None
                    and factory is None
                    and self._batch is None
                    and not learns
                ):
                    prefetch = self._prefetch.popleft() if self._prefetch else None
            if config is not None:
                self._load(*config)
            elif reload and self._segmenter is not None:
                self._adapter = self._load_adapter(self._project)
                self.adapter_changed.emit()
            if learns:
                self._learn_all(learns)
            if factory is not None:
                self._begin_batch(factory)
            job = interactive or prefetch
            if job is not None:
                self._propose(job)
            elif self._batch is not None:
                self._batch_step()
            elif config is None and factory is None and not reload and not learns:
                if not self._catch_up:
                    return
                self._learn_stored(self._catch_up.popleft())  # only when nothing else waits

    def _load(self, config: Any, project: Any) -> None:
        self._segmenter = None
        self._project = project
        try:
            segmenter = _engine.create_app_segmenter(config)
        except Exception as error:  # noqa: BLE001 - every failure must reach the user
            self.state_changed.emit(
                EngineState(getattr(config, "model", "?"), "-", False, str(error), _details(error))
            )
            return
        self._segmenter = segmenter
        self._adapter = self._load_adapter(project)
        self._memory = self._load_memory(project, segmenter)
        try:
            self._catch_up = deque(_engine.unlearned_images(project, self._memory))
        except ProjectClosedError:  # another folder is on its way; its own load follows
            self._catch_up = deque()
        self.state_changed.emit(_engine.describe(segmenter, config))

    def _fail(self, request_id: int, message: str, error: BaseException) -> None:
        """Send ``failed`` for ``error``, except for work on a project closed meanwhile (another
        folder opened, the window closing): that work is moot, and the user did nothing wrong."""
        if isinstance(error, ProjectClosedError):
            return
        self.failed.emit(request_id, message, _details(error))

    def _load_adapter(self, project: Any) -> Any:
        if project is None:
            return None
        try:
            return _engine.load_adapter(project)
        except Exception as error:  # noqa: BLE001
            self._fail(0, f"The trained head could not be loaded: {error}", error)
            return None

    def _load_memory(self, project: Any, segmenter: Any) -> Any:
        try:
            memory = _engine.load_memory(project, segmenter)
        except Exception as error:  # noqa: BLE001
            self._fail(0, f"The class memory could not be loaded: {error}", error)
            return None
        self.memory_changed.emit({} if memory is None else memory.counts(), False)
        return memory

    def _learn_all(self, learns: dict[str, tuple[np.ndarray, np.ndarray, Any]]) -> None:
        if self._memory is None or self._project is None:
            return
        try:
            changed = [
                _engine.learn(self._project, self._segmenter, self._memory, relpath, image, labels)
                for relpath, (image, labels, source) in learns.items()
                if source is self._project
            ]
        except Exception as error:  # noqa: BLE001
            self._fail(0, f"The class memory could not learn: {error}", error)
            return
        if any(changed):
            self.memory_changed.emit(self._memory.counts(), True)

    def _learn_stored(self, relpath: str) -> None:
        """Catch up, when idle, with labels saved while the app was closed (or elsewhere)."""
        project = self._project
        if self._memory is None or project is None:
            return
        try:
            labels = project.load_labels(relpath)
            if labels is not None:
                image = project.load_image(relpath)
                _engine.learn(project, self._segmenter, self._memory, relpath, image, labels)
        except (
            AnnotatorError
        ):  # an unreadable image or label file (the list shows it) teaches nothing
            pass
        except Exception as error:  # noqa: BLE001
            self._fail(0, f"The class memory could not learn {relpath}: {error}", error)
        if not self._catch_up:
            self.memory_changed.emit(self._memory.counts(), True)

    def _current_adapter(self) -> Any:
        """The trained head with the class memory (current class names and switches)."""
        if self._project is None:
            return self._adapter
        return _engine.with_memory(self._project, self._segmenter, self._memory, self._adapter)

    def _usable(self) -> bool:
        segmenter = self._segmenter
        return segmenter is not None and (segmenter.available or self._adapter is not None)

    def _propose(self, request: ProposalRequest) -> None:
        with self._lock:
            if request.id in self._cancelled:
                self._cancelled.discard(request.id)
                return
        if not self._usable():
            if not request.prefetch:
                self.failed.emit(request.id, "No model is loaded, so there is no proposal.", "")
            return
        if request.query.empty:
            self._encode(request.image)
            return
        start = time.perf_counter()
        try:
            import torch

            with torch.inference_mode():
                ids, confidence, segments = predict_with_segments(
                    self._segmenter, request.image, request.query, self._current_adapter(),
                    request.dtype,
                )  # fmt: skip
            if request.save and self._project is not None:
                self._project.save_proposal(request.relpath, ids, confidence)
        except Exception as error:  # noqa: BLE001
            self._fail(request.id, f"Proposing {request.relpath} failed: {error}", error)
            return
        seconds = time.perf_counter() - start
        self.proposal_ready.emit(
            ProposalResult(
                request.id, request.relpath, request.query, ids, confidence, seconds,
                request.prefetch, request.submitted, segments,
            )
        )  # fmt: skip

    def _encode(self, image: np.ndarray) -> None:
        """No classes yet: only compute (and cache) the features of ``image`` (``HxWx3 uint8``),
        so the proposal asked for once classes are typed skips the image encoder. Nothing is
        stored or sent back; a failure here shows up on the real request."""
        if not getattr(self._segmenter, "available", False):
            return
        with contextlib.suppress(Exception):
            import torch

            with torch.inference_mode():
                self._segmenter.set_image(image)

    def _begin_batch(self, pending: tuple[Callable[..., Any], bool, Any]) -> None:
        factory, needs_model, project = pending
        if project is not None and project is not self._project:
            self.batch_finished.emit(None, True)  # asked for in the folder open before
            return
        if needs_model and not self._usable():
            self.failed.emit(0, "No model is loaded; this job needs one.", "")
            self.batch_finished.emit(None, True)
            return
        segmenter = self._segmenter
        if segmenter is not None and not segmenter.available:
            segmenter = None
        try:
            adapter = self._current_adapter()
            self._batch = factory(self._project, segmenter, adapter, self._batch_stop.is_set)
        except Exception as error:  # noqa: BLE001
            self._fail(0, f"The job could not start: {error}", error)
            self.batch_finished.emit(None, True)

    def _batch_step(self) -> None:
        job = self._batch
        try:
            import torch

            with torch.inference_mode():
                step = next(job)
        except StopIteration as done:
            self._batch = None
            self.batch_finished.emit(done.value, self._batch_stop.is_set())
            return
        except Exception as error:  # noqa: BLE001
            self._batch = None
            self._fail(0, f"Propose all stopped: {error}", error)
            self.batch_finished.emit(None, True)
            return
        self.batch_progress.emit(step)


def _lower_thread_priority(niceness: int = 5) -> None:
    """Let the GUI thread win the CPU when both want it (Linux: niceness is per thread, and
    the threads torch starts from here inherit it). Elsewhere this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def _details(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


class EngineThread:
    """Starts the worker in its own QThread and stops it cleanly (never ``terminate()``)."""

    def __init__(self) -> None:
        self.thread = QThread()
        self.thread.setObjectName("annotator-engine")
        self.worker = EngineWorker()
        self.worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, timeout_ms: int = 30000) -> None:
        self.worker.stop_batch()
        self.thread.quit()
        self.thread.wait(timeout_ms)


def propose_all_factory(relpaths: list[str], query: ClassQuery) -> Callable[..., Any]:
    """A batch job for :meth:`EngineWorker.start_batch` proposing ``relpaths``."""

    def factory(project: Any, segmenter: Any, adapter: Any, should_stop: Any) -> Any:
        return propose_all(project, segmenter, relpaths, query, adapter, should_stop)

    return factory
