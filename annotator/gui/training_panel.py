"""The retraining panel: Retrain / Cancel, a loss curve, the before/after metrics table, and the
model versions with "Use this version" and "Roll back".

The panel never trains on its own thread. Either the main window runs the job where the
segmenter lives (``EngineWorker.start_batch(panel.job_factory())``, then forwards the worker's
``batch_progress`` / ``batch_finished`` / ``failed`` signals to :meth:`on_progress`,
:meth:`on_finished`, :meth:`on_failed`), or :meth:`start` runs it in a superqt worker thread
(fine when nothing else uses that segmenter meanwhile, e.g. ``None``: filter features only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotator.progress import Progress

_ID_ROLE = 0x0100  # Qt.ItemDataRole.UserRole
_ZERO_SHOT_ID = ""  # item data of the "zero-shot only" entry (no trained version)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _drive(job_factory: Callable[..., Any], should_stop: Callable[[], bool]) -> Generator:
    """A generator function (superqt needs one) around the training job."""
    return (yield from job_factory(should_stop))


class TrainingPanel(QWidget):
    retrain_requested = Signal()  # the user clicked Retrain (main window: start the job)
    cancel_requested = Signal()  # the user clicked Cancel (main window: stop the job)
    version_changed = Signal(object)  # active version id or None: refresh the proposals

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Any = None
        self.config: Any = None  # a training.TrainConfig; None = defaults
        self.worker: Any = None
        self._stop = threading.Event()
        self._loss_x: list[float] = []
        self._loss_y: list[float] = []
        self._build()
        self.set_running(False)

    # -- construction ------------------------------------------------------------------------

    def _build(self) -> None:
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip("Train on the labelled images; proposals then use it")
        self.cancel_button = QPushButton("Cancel")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.plot = pg.PlotWidget(title="training loss")
        self.plot.setLabel("bottom", "step")
        self.plot.setMinimumHeight(140)
        self.curve = self.plot.plot([], [], pen=pg.mkPen(width=2))
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["held-out", "before", "after", "change"])
        self.table.verticalHeader().setVisible(False)
        self.versions = QListWidget()
        self.use_button = QPushButton("Use this version")
        self.rollback_button = QPushButton("Roll back")
        self._lay_out()
        self.retrain_button.clicked.connect(self.retrain_requested)
        self.cancel_button.clicked.connect(self._cancel)
        self.use_button.clicked.connect(self.use_selected)
        self.rollback_button.clicked.connect(self.roll_back)
        self.versions.currentItemChanged.connect(self._show_selected)

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.retrain_button)
        buttons.addWidget(self.cancel_button)
        versions = QHBoxLayout()
        versions.addWidget(self.use_button)
        versions.addWidget(self.rollback_button)
        layout = QVBoxLayout(self)
        for item in (buttons, self.status, self.progress, self.plot, self.table):
            layout.addLayout(item) if isinstance(item, QHBoxLayout) else layout.addWidget(item)
        layout.addWidget(QLabel("Model versions"))
        layout.addWidget(self.versions)
        layout.addLayout(versions)

    # -- project and versions ----------------------------------------------------------------

    def set_project(self, project: Any) -> None:
        """Show ``project``'s versions; Retrain is enabled once it has a labelled image."""
        self.project = project
        self.refresh()

    def refresh(self) -> None:
        from training import list_versions

        self.versions.clear()
        if self.project is None:
            self.set_running(self.worker is not None)
            return
        from training.report import ZERO_SHOT_ENTRY, scores_text, zero_shot_metrics

        versions = list_versions(self.project)
        for version in reversed(versions):
            self.versions.addItem(self._version_item(version))
        if versions:
            active = "" if any(v.active for v in versions) else "  (active)"
            item = QListWidgetItem(
                f"{ZERO_SHOT_ENTRY}  {scores_text(zero_shot_metrics(versions))}{active}"
            )
            item.setData(_ID_ROLE, _ZERO_SHOT_ID)
            self.versions.addItem(item)
        self.set_running(self.worker is not None)

    @staticmethod
    def _version_item(version: Any) -> QListWidgetItem:
        after = version.metrics.get("after", {})
        text = (
            f"{version.id}  round {version.extra.get('round', '?')}  mIoU {_pct(after.get('miou'))}"
            f"  hIoU {_pct(after.get('hiou'))}"
        )
        item = QListWidgetItem(text + ("  (active)" if version.active else ""))
        item.setData(_ID_ROLE, version.id)
        return item

    def reviewed_count(self) -> int:
        if self.project is None:
            return 0
        return len(self.project.list_images(("edited", "reviewed"), has_labels=True))

    def selected_version(self) -> str | None:
        item = self.versions.currentItem()
        return None if item is None else item.data(_ID_ROLE)

    def use_selected(self) -> None:
        """Make the selected version (or "zero-shot only") the active one."""
        from training import activate_version

        version_id = self.selected_version()
        if self.project is None or version_id is None:
            return
        activate_version(self.project, version_id or None)
        self._changed(version_id or None, f"Proposals now use {version_id or 'zero-shot only'}.")

    def roll_back(self) -> None:
        """Activate the version before the active one (or zero-shot when there is none)."""
        from training import rollback

        if self.project is None:
            return
        previous = rollback(self.project)
        version_id = None if previous is None else previous.id
        self._changed(version_id, f"Rolled back to {version_id or 'zero-shot proposals'}.")

    def _changed(self, version_id: str | None, message: str) -> None:
        self.status.setText(message)
        self.refresh()
        self.version_changed.emit(version_id)

    def _show_selected(self, *_: Any) -> None:
        from training import list_versions

        version_id = self.selected_version()
        for version in list_versions(self.project) if self.project is not None else []:
            if version.id == version_id and version.metrics:
                self.show_metrics(version.metrics["before"], version.metrics["after"])

    # -- running -----------------------------------------------------------------------------

    def set_running(self, running: bool) -> None:
        self.retrain_button.setEnabled(not running and self.reviewed_count() > 0)
        self.cancel_button.setEnabled(running)
        has_versions = self.versions.count() > 1  # besides the "zero-shot only" entry
        self.use_button.setEnabled(not running and has_versions)
        self.rollback_button.setEnabled(not running and has_versions)

    def job_factory(self) -> Callable[..., Any]:
        """For ``EngineWorker.start_batch``: ``factory(project, segmenter, adapter, stop)``."""
        from training import train

        config = self.config

        def factory(project: Any, segmenter: Any, adapter: Any, should_stop: Any) -> Any:
            return train(project, segmenter, config, should_stop)

        self._begin()
        return factory

    def start(self, segmenter: Any) -> None:
        """Run the training job in a superqt worker thread with ``segmenter`` (may be None)."""
        from superqt.utils import create_worker

        from training import train

        project, config = self.project, self.config
        self._stop.clear()
        self._begin()
        connections = {
            "yielded": self.on_progress,
            "returned": lambda result: self.on_finished(result, False),
            "errored": self._errored,  # also stops superqt re-raising in the event loop
            "finished": self._worker_done,
        }
        worker = create_worker(
            _drive, lambda stop: train(project, segmenter, config, stop), self._stop.is_set,
            _start_thread=False, _connect=connections,
        )  # fmt: skip
        self.worker = worker
        self.set_running(True)
        worker.start()

    def _begin(self) -> None:
        self._loss_x, self._loss_y = [], []
        self.curve.setData([], [])
        self.table.setRowCount(0)
        self.status.setText("Retraining…")
        self.set_running(True)

    def _cancel(self) -> None:
        self._stop.set()
        self.cancel_requested.emit()
        self.status.setText("Cancelling… the previous version stays active.")

    def _errored(self, error: BaseException) -> None:
        from annotator.errors import JobCancelled

        if isinstance(error, JobCancelled):
            self.on_finished(None, True)
        else:
            self.on_failed(str(error))

    def _worker_done(self) -> None:
        self.worker = None
        self.set_running(False)

    def on_progress(self, step: Progress) -> None:
        """Show one step: progress bar, message, and the loss curve."""
        self.progress.setMaximum(max(1, step.total))
        self.progress.setValue(step.done)
        self.status.setText(step.message)
        data = step.data if isinstance(step.data, dict) else {}
        if "loss" in data:
            self._loss_x.append(len(self._loss_x) + 1)
            self._loss_y.append(float(data["loss"]))
            self.curve.setData(self._loss_x, self._loss_y)

    def on_finished(self, result: Any, cancelled: bool) -> None:
        """The job ended: show before/after, list the new version, ask for fresh proposals."""
        self.set_running(False)
        if result is None or cancelled:
            self.status.setText("Retraining cancelled; the previous version stays active.")
            self.refresh()
            return
        self.show_metrics(result.metrics_before, result.metrics_after)
        if not result.activated:  # scored lower: the better, active model stays
            self.status.setText(result.regression_note)
            self.refresh()
            return
        self._changed(result.version.id, f"{result.version.id} is now active.")

    def on_failed(self, message: str) -> None:
        self.status.setText(f"Retraining stopped: {message}")
        self.set_running(False)
        self.refresh()

    def show_metrics(self, before: Any, after: Any) -> None:
        """Fill the table from two MetricsReports (or their JSON dicts)."""
        from training.report import comparison_rows

        rows = comparison_rows(before, after)
        self.table.setRowCount(len(rows))
        for row, (label, old, new) in enumerate(rows):
            change = "-" if old is None or new is None else f"{100 * (new - old):+.1f}"
            for column, text in enumerate((label, _pct(old), _pct(new), change)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    @property
    def loss_points(self) -> list[float]:
        return list(self._loss_y)
