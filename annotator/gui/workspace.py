"""The open project as the GUI sees it: current image, proposals, autosave, class edits.

Widgets never touch the store, the engine or the disk directly; they call the workspace, which
sends the slow work to threads (image loading, the engine worker, a single autosave thread) and
reports back with signals.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from annotator.errors import AnnotatorError
from annotator.gui._labelops import Rect
from annotator.gui._propose import ClassQuery
from annotator.gui._settings import AppSettings, engine_config
from annotator.gui.engine_worker import (
    EngineState,
    EngineThread,
    ProposalRequest,
    ProposalResult,
    propose_all_factory,
)
from annotator.gui.loader import ImageBundle, ImageLoader

AUTOSAVE_DELAY_MS = 250
KEPT_PROPOSALS = 8
#: Accept a proposal in one go up to this many pixels; larger maps go band by band.
ACCEPT_SYNC_PIXELS = 16_000_000
ACCEPT_BAND_ROWS = 256
PREFETCH_DELAY_MS = 150


class BandedAccept(QObject):
    """Accepting a proposal as one undoable edit, ``ACCEPT_BAND_ROWS`` rows per event-loop turn."""

    finished = Signal(bool)  # whether anything changed

    def __init__(self, document: Any, proposal: np.ndarray, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document, self.proposal, self.row = document, proposal, 0
        self._timer = QTimer(self, interval=0)
        self._timer.timeout.connect(self._step)
        document.begin("Accept proposal")
        document.busy = True

    def start(self) -> None:
        self._timer.start()

    def _band(self) -> None:
        doc, height = self.document, self.document.shape[0]
        y1 = min(height, self.row + ACCEPT_BAND_ROWS)
        labels, proposal = doc.labels[self.row : y1], self.proposal[self.row : y1]
        mask = (labels == doc.unlabeled) & (proposal != doc.unlabeled)
        doc.write(Rect(0, self.row, doc.shape[1], y1), mask, proposal)
        self.row = y1
        doc.settle(y1)

    def _step(self) -> None:
        self._band()
        if self.row >= self.document.shape[0]:
            self.finish()

    def finish(self) -> bool:
        """Do the remaining bands now; close the edit; report whether it changed anything."""
        self._timer.stop()
        while self.row < self.document.shape[0]:
            self._band()
        if not self.document.busy:
            return False  # already finished
        self.document.busy = False
        changed = self.document.end() is not None
        self.finished.emit(changed)
        return changed


class Workspace(QObject):
    records_changed = Signal()
    classes_changed = Signal()
    image_shown = Signal(object)  # ImageBundle or None
    #: relpath, seconds: from opening the image (or asking again) to the proposal on screen;
    #: for one computed in advance, the engine's own time (see ``shown_in_advance``).
    proposal_shown = Signal(str, float)
    autosave_state = Signal(str)
    notify = Signal(str, str)  # message, details
    message = Signal(str)
    engine_state = Signal(object)  # EngineState
    engine_loading = Signal(object)  # model name: a (re)load started; engine_state follows
    batch_progress = Signal(object)
    batch_finished = Signal(object, bool)
    memory_changed = Signal()  # memory_counts changed (or a class memory was switched)
    _saved = Signal()

    def __init__(self, settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.project: Any = None
        self.current: ImageBundle | None = None
        self.wanted: str | None = None
        self.order: list[str] = []
        self._opened_at = 0.0  # perf_counter() when the shown image was asked for
        self.shown_in_advance = False  # the last proposal shown was computed before it was asked
        self.state = EngineState(settings.model, "-", False, "The model is still loading.")
        self._next_id = 0
        self._first_id = 1
        self._latest_id = 0
        self._dropped: set[int] = set()
        self._accepting: BandedAccept | None = None
        self._proposals: OrderedDict[str, ProposalResult] = OrderedDict()
        self._saving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotator-save")
        self._dirty = False
        self._unlearned: set[str] = set()  # saved since the class memory last learned them
        self.memory_counts: dict[int, int] = {}
        self._save_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._autosave)
        self._records_timer = QTimer(self, singleShot=True, interval=100)
        self._records_timer.timeout.connect(self.records_changed.emit)
        self._prefetch_timer = QTimer(self, singleShot=True, interval=PREFETCH_DELAY_MS)
        self._prefetch_timer.timeout.connect(self.prefetch_next)
        self._saved.connect(self._after_save)
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._loaded)
        self.loader.failed.connect(self._load_failed)
        self.engine = EngineThread()
        worker = self.engine.worker
        worker.proposal_ready.connect(self._proposal_ready)
        worker.failed.connect(self._worker_failed)
        worker.state_changed.connect(self._engine_state)
        worker.batch_progress.connect(self._batch_progress)
        worker.batch_finished.connect(self._batch_finished)
        worker.adapter_changed.connect(self._adapter_changed)
        worker.memory_changed.connect(self._memory_changed)
        self.batch_kind: str | None = None  # "propose" or "train" while a batch job runs
        self._batch_source: Any = None  # the project the running batch job was started in

    # -- project ---------------------------------------------------------------------------------

    def open_project(self, project: Any) -> None:
        self.close_project()
        self._first_id = self._next_id + 1  # results of earlier requests belong to another folder
        self.project = project
        self.loader.project = project
        self.configure_engine()
        self.records_changed.emit()
        self.classes_changed.emit()

    def close_project(self) -> None:
        if self.project is None:
            return
        self.save_now()
        self.wait_for_saves()
        self.engine.worker.prefetch([])
        self.engine.worker.cancel(self._latest_id)
        self.engine.worker.stop_batch()
        self.current = None
        self.wanted = None
        self.loader.clear()
        self._proposals.clear()
        self.image_shown.emit(None)
        self.project.close()
        self.project = None
        self.loader.project = None

    def configure_engine(self) -> None:
        """(Re)load the segmenter from the settings, in the engine thread."""
        if not self.settings.use_model:
            self.state = EngineState(self.settings.model, "-", False, None)
            self.engine_state.emit(self.state)
            return
        try:
            config = engine_config(self.settings)
        except Exception as error:  # noqa: BLE001 - a bad setting must not close the app
            self._engine_state(EngineState(self.settings.model, "-", False, str(error)))
            return
        self.engine_loading.emit(self.settings.model)
        self.engine.worker.configure(config, self.project)

    def shutdown(self) -> None:
        self.close_project()
        self._saving.shutdown(wait=True)
        self.loader.shutdown()
        self.engine.stop()

    def records(self, key: str | None = None) -> list[Any]:
        if self.project is None:
            return []
        if key == "queue":
            return self.project.review_queue()
        if key == "error":
            return [r for r in self.project.list_images() if r.error]
        return self.project.list_images(status=key)

    # -- classes -----------------------------------------------------------------------------------

    def classes(self) -> list[Any]:
        return [] if self.project is None else self.project.list_classes()

    def query(self) -> ClassQuery:
        classes = self.classes()
        return ClassQuery(tuple(c.id for c in classes), tuple(c.prompt for c in classes))

    def change_classes(self, action: str, *args: Any) -> Any:
        """Run a store class operation (add_class, rename_class, ...); errors become notices."""
        if self.project is None:
            self.message.emit("Open a folder first.")
            return None
        if action in ("merge_classes", "delete_class"):
            # The store rewrites the saved maps: pending edits must be on disk first.
            self.save_now()
            self.wait_for_saves()
        try:
            result = getattr(self.project, action)(*args)
        except AnnotatorError as error:
            self.notify.emit(str(error), "")
            return None
        self._classes_edited(action)
        return result

    def _classes_edited(self, action: str) -> None:
        self._proposals.clear()
        if action in ("merge_classes", "delete_class") and self.current is not None:
            # The store rewrote the maps; reload the shown image's labels from it.
            self._reload_labels(self.current)
        self.classes_changed.emit()
        self.request_proposal()
        self.prefetch_next()

    def _reload_labels(self, bundle: ImageBundle) -> None:
        self._save_timer.stop()
        # The history refers to class ids that no longer exist: start afresh.
        bundle.document.reset(self.project.load_labels(bundle.relpath))
        bundle.proposal = self.project.load_proposal(bundle.relpath)
        self.loader.clear(keep=bundle.relpath)
        self.image_shown.emit(bundle)

    # -- images ------------------------------------------------------------------------------------

    def open_image(self, relpath: str) -> None:
        if self.project is None or (self.current is not None and self.current.relpath == relpath):
            return
        self.finish_accepting()
        self.save_now()
        self._teach(self.current)
        self.wanted = relpath
        self._opened_at = time.perf_counter()
        bundle = self.loader.cached(relpath)
        if bundle is not None:
            self._show(bundle)
        else:
            self.message.emit(f"Loading {relpath}…")
            self.loader.load(relpath)

    def _loaded(self, bundle: ImageBundle) -> None:
        if bundle.source is not self.project:
            return  # read from the folder that was open before: same name, other image
        self.loader.accept(bundle, self._keep())
        if bundle.relpath == self.wanted and (
            self.current is None or self.current.relpath != bundle.relpath
        ):
            self._show(bundle)
        else:
            self._prefetch_engine(bundle)

    def _keep(self) -> set[str]:
        keep = set(self._next_relpaths())
        if self.wanted:
            keep.add(self.wanted)
        return keep

    def _load_failed(self, source: Any, relpath: str, message: str, details: str) -> None:
        if source is not self.project:
            return  # about the folder that was open before
        self.loader.forget_failed(relpath)
        self._records_timer.start()
        if relpath != self.wanted:
            return
        self.notify.emit(message, details)
        if self.current is None and relpath in self.order:
            # Nothing on screen yet (a folder was just opened): show the next image instead.
            following = self.order[self.order.index(relpath) + 1 :]
            if following:
                self.open_image(following[0])

    def _show(self, bundle: ImageBundle) -> None:
        self.current = bundle
        result = self._proposals.get(bundle.relpath)
        if result is not None and result.query == self.query():
            bundle.proposal = result.label_map
        self.image_shown.emit(bundle)
        if result is not None and result.query == self.query():
            self.shown_in_advance = True
            self.proposal_shown.emit(bundle.relpath, result.seconds)
        else:
            self.request_proposal()
        # Start background work once this image is on screen, not while it is being painted.
        self._prefetch_timer.start()

    def _next_relpaths(self) -> list[str]:
        if self.wanted is None or self.wanted not in self.order:
            return []
        start = self.order.index(self.wanted) + 1
        return self.order[start : start + max(0, self.settings.prefetch)]

    def prefetch_next(self) -> None:
        """Decode the next images now and have the engine encode and propose them. Before any
        class is typed the engine only encodes the shown image: the first proposal then costs
        only the text (it used to wait seconds for the next images' encoding, which cannot be
        interrupted once started)."""
        no_classes = self.query().empty
        requests = []
        if no_classes and self.current is not None:
            requests.append(self._make_request(self.current, prefetch=True))
        for relpath in self._next_relpaths():
            bundle = self.loader.cached(relpath)
            if bundle is None:
                self.loader.load(relpath)
            elif not no_classes and self._needs_proposal(relpath):
                requests.append(self._make_request(bundle, prefetch=True))
        self.engine.worker.prefetch(requests)

    def _prefetch_engine(self, bundle: ImageBundle) -> None:
        if bundle.relpath in self._next_relpaths():
            self.prefetch_next()

    def _needs_proposal(self, relpath: str) -> bool:
        result = self._proposals.get(relpath)
        return result is None or result.query != self.query()

    def _make_request(self, bundle: ImageBundle, prefetch: bool) -> ProposalRequest:
        self._next_id += 1
        return ProposalRequest(
            self._next_id, bundle.relpath, bundle.image, self.query(),
            bundle.document.labels.dtype, prefetch=prefetch,
        )  # fmt: skip

    # -- proposals ---------------------------------------------------------------------------------

    @property
    def can_propose(self) -> bool:
        return self.state.available and bool(self.classes())

    def request_proposal(self) -> None:
        """Ask for a fresh proposal of the shown image (features are cached: fast after the
        first time); an older waiting request is dropped."""
        if self.current is None or not self.can_propose:
            return
        if self._latest_id:
            self.engine.worker.cancel(self._latest_id)
        request = self._make_request(self.current, prefetch=False)
        self._latest_id = request.id
        self.engine.worker.request(request)
        self.message.emit("Proposing…")

    def _proposal_ready(self, result: ProposalResult) -> None:
        if result.id < self._first_id:
            return  # asked for in the folder that was open before
        self._records_timer.start()
        if result.id in self._dropped:
            self._dropped.discard(result.id)
            return  # the user stopped it
        if result.query != self.query():
            return  # stale: the classes changed since it was asked for
        self._proposals[result.relpath] = result
        self._proposals.move_to_end(result.relpath)
        while len(self._proposals) > KEPT_PROPOSALS:
            self._proposals.popitem(last=False)
        cached = self.loader.cached(result.relpath)
        if cached is not None:
            cached.proposal = result.label_map
        if self.current is not None and self.current.relpath == result.relpath:
            self.current.proposal = result.label_map
            # A prefetch asked for before the image was opened: count from the opening.
            waited = time.perf_counter() - max(result.submitted, self._opened_at)
            self.shown_in_advance = False
            self.proposal_shown.emit(result.relpath, waited)

    def proposal_segments(self, relpath: str) -> tuple[Any, tuple[int, ...]] | None:
        """(zegformer segments, class ids of their indices) of ``relpath``'s current proposal,
        or None (dense proposer, or no current proposal)."""
        result = self._proposals.get(relpath)
        if result is None or result.segments is None or result.query != self.query():
            return None
        return result.segments, result.query.ids

    def accept_proposal(self) -> bool:
        """Copy the proposal into every unlabeled pixel (human labels win); one undo step.

        Large images are done band by band between events, so the window never freezes; the
        canvas refuses edits until it is done. Returns whether anything changed (or started).
        """
        bundle = self.current
        if bundle is None or bundle.proposal is None:
            self.message.emit("There is no proposal to accept.")
            return False
        if self._accepting is not None:
            return False
        job = BandedAccept(bundle.document, bundle.proposal, self)
        if bundle.document.labels.size <= ACCEPT_SYNC_PIXELS:
            return self._accepted(job.finish())
        self._accepting = job
        job.finished.connect(self._accepted)
        job.start()
        self.message.emit("Accepting the proposal…")
        return True

    def _accepted(self, changed: bool) -> bool:
        self._accepting = None
        if changed:
            self.edited()
        return changed

    def finish_accepting(self) -> None:
        """Complete a running banded accept now (before saving or switching images)."""
        if self._accepting is not None:
            self._accepting.finish()

    def propose_all(self) -> bool:
        if self.project is None or not self.can_propose:
            return False
        relpaths = [r.relpath for r in self.project.list_images() if not r.error]
        return self.start_batch(propose_all_factory(relpaths, self.query()), "propose")

    def start_batch(self, factory: Any, kind: str, needs_model: bool = True) -> bool:
        """Run a batch job in the engine thread (it owns the model); one at a time."""
        if self.batch_kind is not None:
            self.message.emit(f"Wait for the running {self.batch_kind} job, or cancel it.")
            return False
        self.batch_kind, self._batch_source = kind, self.project
        self.engine.worker.start_batch(factory, needs_model, self.project)
        return True

    def reload_adapter(self) -> None:
        """The active trained version changed: reload it in the engine, then re-propose."""
        self.engine.worker.reload_adapter()

    def _adapter_changed(self) -> None:
        self._proposals.clear()
        self.request_proposal()
        self.prefetch_next()

    def stop_proposing(self) -> None:
        """Cancel the waiting request, the background prefetch and any batch job."""
        self.engine.worker.cancel(self._latest_id)
        self._dropped.add(self._latest_id)
        self.engine.worker.prefetch([])
        self.cancel_batch()
        self.message.emit("Stopped; the proposal being computed now is dropped when it ends.")

    def cancel_batch(self) -> None:
        self.engine.worker.stop_batch()

    def _batch_progress(self, progress: Any) -> None:
        if self._batch_source is not self.project:
            return  # the job of the folder open before, winding down (it was stopped)
        self._records_timer.start()
        self.batch_progress.emit(progress)

    def _batch_finished(self, result: Any, cancelled: bool) -> None:
        kind, self.batch_kind = self.batch_kind, None
        if self._batch_source is not self.project:
            # Stopped when its folder closed: its result (a version, scores, a count) is about
            # that folder, not this one; the panels only learn that the engine is free again.
            result, cancelled = None, True
        self._batch_source = None
        self._proposals.clear()
        self.records_changed.emit()
        self.batch_finished.emit((kind, result), cancelled)
        if self.current is not None:
            self.request_proposal()

    def _engine_state(self, state: EngineState) -> None:
        self.state = state
        self.engine_state.emit(state)
        self.request_proposal()
        self.prefetch_next()

    def _worker_failed(self, request_id: int, message: str, details: str) -> None:
        if request_id and request_id != self._latest_id:
            return  # a failure of a stale or prefetch request: not worth interrupting the user
        self.notify.emit(message, details)

    # -- saving ------------------------------------------------------------------------------------

    def edited(self) -> None:
        """A finished edit: autosave shortly (coalescing quick successive edits)."""
        self._dirty = True
        self.autosave_state.emit("Unsaved changes")
        self._save_timer.start()

    def _autosave(self) -> None:
        if self._accepting is not None:
            self._save_timer.start()  # a banded accept is running: save once it is complete
            return
        self.save_now()

    def save_now(self, status: str = "edited") -> None:
        """Write the shown image's labels now (in the save thread) if they changed."""
        self._save_timer.stop()
        self.finish_accepting()
        bundle = self.current
        if bundle is None or self.project is None or (not self._dirty and status == "edited"):
            return
        self._dirty = False
        self.autosave_state.emit("Saving…")
        # The save thread takes its own copy (a 100 Mpx map costs ~50 ms to copy; not here). An
        # edit made during that copy schedules the next autosave, which writes the final state.
        live = bundle.document.labels
        self._saving.submit(self._write, self.project, bundle.relpath, live, status)

    def wait_for_saves(self) -> None:
        """Block until every queued autosave is written (before the store rewrites maps)."""
        self._saving.submit(lambda: None).result()

    def _write(self, project: Any, relpath: str, live: np.ndarray, status: str) -> None:
        # Runs in the save thread; the store is thread-safe.
        try:
            labels = live.copy()
            project.save_labels(relpath, labels, status=status)
            self._unlearned.add(relpath)
            present = {int(v) for v in np.unique(labels)}
            for info in project.list_classes():
                if info.novel and info.id in present:
                    project.set_novel(info.id, False)
        except Exception as error:  # noqa: BLE001
            self.notify.emit(
                f"Saving the labels of {relpath} failed: {error}", traceback.format_exc()
            )
            self.autosave_state.emit("Save failed")
            return
        self.autosave_state.emit(f"Saved {time.strftime('%H:%M:%S')}")
        self._saved.emit()

    def _after_save(self) -> None:
        self._records_timer.start()
        self.classes_changed.emit()

    def mark_reviewed(self) -> str | None:
        """Mark the shown image reviewed (saving its labels); return the next image to open."""
        bundle = self.current
        if bundle is None or self.project is None:
            return None
        doc = bundle.document
        if self._dirty or (doc.labels != doc.unlabeled).any():
            self.save_now(status="reviewed")
            self._teach(bundle)
        else:
            self.project.set_status(bundle.relpath, "reviewed")
            self.records_changed.emit()
        return self._next_unreviewed(bundle.relpath)

    # -- class memory ------------------------------------------------------------------------------

    def _teach(self, bundle: ImageBundle | None) -> None:
        """Once the user moves on from an image (or marks it reviewed), the class memory learns
        its saved labels: after the queued saves, read back from the store in the save thread."""
        if bundle is not None and self.project is not None:
            self._saving.submit(self._teach_saved, self.project, bundle.relpath, bundle.image)

    def _teach_saved(self, project: Any, relpath: str, image: np.ndarray) -> None:
        if relpath not in self._unlearned:  # nothing saved since it was last learned
            return
        self._unlearned.discard(relpath)
        try:
            labels = project.load_labels(relpath)
        except Exception:  # noqa: BLE001 - a label file that cannot be read teaches nothing
            return
        if labels is not None:
            self.engine.worker.learn(relpath, image, labels, project)

    def _memory_changed(self, counts: dict[int, int], learned: bool) -> None:
        self.memory_counts = dict(counts)
        self.memory_changed.emit()
        if learned:  # proposals made before (prefetched ones too) did not know these labels
            self._adapter_changed()

    def memory_disabled(self) -> set[int]:
        """Class ids whose class memory the user switched off."""
        from annotator.engine.memory import disabled_classes

        return set() if self.project is None else disabled_classes(self.project)

    def set_memory_enabled(self, class_id: int, enabled: bool) -> None:
        """Use (or not) a class's memory in proposals; the shown image is proposed again."""
        from annotator.engine.memory import set_memory_enabled

        if self.project is None:
            return
        set_memory_enabled(self.project, class_id, enabled)
        self.memory_changed.emit()
        self.reload_adapter()

    def _next_unreviewed(self, after: str) -> str | None:
        statuses = {r.relpath: r.status for r in self.project.list_images()}
        if after in self.order:
            start = self.order.index(after) + 1
            for relpath in self.order[start:] + self.order[: start - 1]:
                if statuses.get(relpath, "reviewed") != "reviewed":
                    return relpath
        record = self.project.next_unchecked(after)
        return None if record is None or record.relpath == after else record.relpath
