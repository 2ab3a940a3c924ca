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
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
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

from annotator.gui._imports import module_ready
from annotator.progress import Progress
from annotator.wording import plural

_ID_ROLE = 0x0100  # Qt.ItemDataRole.UserRole
_ZERO_SHOT_ID = ""  # item data of the "zero-shot only" entry (no trained version)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


#: Rows of the before/after table that only mean something when some classes are unseen.
GZS3_ROWS = ("seen mIoU", "unseen mIoU", "hIoU")
NO_PIXELS = "n/a"


#: What Retrain trains on: the human labels of edited and reviewed images (imported labels
#: are reviewed), as ``annotator train`` does (``training.dataset.LABELLED_STATUSES``).
TRAINED_STATUSES = ("edited", "reviewed")
NEEDS_LABELS = (
    "Retrain needs labels: paint on an image or accept a proposal (A). Edited and reviewed "
    "images both train; mark the finished ones reviewed (N)."
)


def labelled_counts(project: Any) -> dict[str, int] | None:
    """{status: images with human labels} for edited and reviewed, plus "empty": reviewed
    images without labels; None when no project is open (or it closed meanwhile)."""
    from annotator.errors import ProjectError

    if project is None:
        return None
    try:
        counts = {s: len(project.list_images(s, has_labels=True)) for s in TRAINED_STATUSES}
        counts["empty"] = len(project.list_images("reviewed")) - counts["reviewed"]
    except ProjectError:  # closed while the window shuts down or opens another folder
        return None
    return counts


def retrain_block_reason(project: Any, running: bool) -> str:
    """Why Retrain cannot start now ("" when it can). Counts the project's images live."""
    if running:
        return "A retraining job is running."
    counts = labelled_counts(project)
    if counts is None:
        return "Open a folder first."
    if counts["edited"] or counts["reviewed"]:
        return ""
    if counts["empty"]:
        verbs = (
            "is marked reviewed but holds"
            if counts["empty"] == 1
            else "are marked reviewed but hold"
        )
        return (
            f"{plural(counts['empty'], 'image')} {verbs} no labels: paint labels (or accept a "
            "proposal) first."
        )
    return NEEDS_LABELS


def retrain_tip(project: Any) -> str:
    """The Retrain button's tooltip when it can start: what it will train on."""
    counts = labelled_counts(project) or {"edited": 0, "reviewed": 0}
    total = counts["edited"] + counts["reviewed"]
    held = "; some are held out to score before and after" if total >= 2 else ""
    return (
        f"Train on the {plural(total, 'labelled image')} ({counts['reviewed']} reviewed, "
        f"{counts['edited']} edited{held}); proposals then use the new version"
    )


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
        self._round = 0
        self._offset = 0  # steps of the finished rounds: the x axis counts on across rounds
        self._round_total = 0
        self.round_marks: list[Any] = []
        self._build()
        self.set_running(False)

    # -- construction ------------------------------------------------------------------------

    def _build(self) -> None:
        self.retrain_button = QPushButton("Retrain")
        self.cancel_button = QPushButton("Cancel")
        self.reason = QLabel("")
        self.reason.setWordWrap(True)  # (normal text colour: it is what the user reads first)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self._build_plot()
        self._build_table()
        self.versions = QListWidget()
        self.versions.setWordWrap(True)
        self.versions.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.versions.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.use_button = QPushButton("Use this version")
        self.rollback_button = QPushButton("Roll back")
        self._lay_out()
        self.retrain_button.clicked.connect(self.retrain_requested)
        self.cancel_button.clicked.connect(self._cancel)
        self.use_button.clicked.connect(self.use_selected)
        self.rollback_button.clicked.connect(self.roll_back)
        self.versions.currentItemChanged.connect(self._show_selected)

    def _build_plot(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        self.plot = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base))
        self.plot.setTitle("training loss", color=text)
        for side in ("bottom", "left"):
            axis = self.plot.getAxis(side)
            axis.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid)))
            axis.setTextPen(pg.mkPen(text))
        self.plot.setLabel("bottom", "training step, all rounds")
        self.plot.setLabel("left", "loss")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(150)
        self.curve_pen = pg.mkPen(palette.color(QPalette.ColorRole.Highlight), width=2)
        self.curve = self.plot.plot([], [], pen=self.curve_pen)

    def _build_table(self) -> None:
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["held-out", "before", "after", "change"])
        self.table.verticalHeader().setVisible(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        rows = self.table.verticalHeader()
        rows.setDefaultSectionSize(self.fontMetrics().height() + 6)  # compact, like a list
        self.table.setMinimumHeight(7 * rows.defaultSectionSize())
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.retrain_button)
        buttons.addWidget(self.cancel_button)
        versions = QHBoxLayout()
        versions.addWidget(self.use_button)
        versions.addWidget(self.rollback_button)
        layout = QVBoxLayout(self)
        for item in (buttons, self.reason, self.status, self.progress):
            layout.addLayout(item) if isinstance(item, QHBoxLayout) else layout.addWidget(item)
        layout.addWidget(self.plot, 3)
        layout.addWidget(self.table, 3)
        layout.addWidget(QLabel("Model versions"))
        layout.addWidget(self.versions, 1)
        layout.addLayout(versions)

    # -- project and versions ----------------------------------------------------------------

    def set_project(self, project: Any) -> None:
        """Show ``project``'s versions (the previous project's curve, table and messages go);
        Retrain is enabled once an image has human labels (edited or reviewed)."""
        self.project = project
        self.clear_results()
        self.status.setText("")
        self.refresh()

    def clear_results(self) -> None:
        """Empty the loss curve, round marks, progress and before/after table."""
        self._loss_x, self._loss_y = [], []
        self._round, self._offset, self._round_total = 0, 0, 0
        self.curve.setData([], [])
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)  # not the last run's axes
        self.plot.enableAutoRange()
        for mark in self.round_marks:
            self.plot.removeItem(mark)
        self.round_marks = []
        self.progress.reset()
        self.table.setRowCount(0)

    def update_state(self) -> None:
        """Re-check whether Retrain can start (call on every image status change)."""
        self.set_running(self.worker is not None or self._job_running)

    def refresh(self) -> None:
        self.versions.clear()
        if self.project is None or not module_ready("training", self, self.refresh):
            self.update_state()  # (listed again once torch and training are imported)
            return
        from training import list_versions
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
        self._mark_active()
        self.update_state()

    def _mark_active(self) -> None:
        """The active entry in bold; every entry wraps (the zero-shot line, with its scores,
        ran past the panel's edge and hid its "(active)")."""
        for row in range(self.versions.count()):
            item = self.versions.item(row)
            font = item.font()
            font.setBold(item.text().endswith("(active)"))
            item.setFont(font)
            item.setToolTip(item.text())

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
        """Images Retrain trains on (edited or reviewed, with labels)."""
        if self.project is None:
            return 0
        return len(self.project.list_images(TRAINED_STATUSES, has_labels=True))

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

    _job_running = False  # a job started through job_factory() (run by the main window)

    def set_running(self, running: bool) -> None:
        reason = retrain_block_reason(self.project, running)
        self.retrain_button.setEnabled(not reason)
        self.retrain_button.setToolTip(reason or retrain_tip(self.project))
        self.reason.setText("" if running else reason)
        self.reason.setVisible(bool(reason) and not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)  # idle, it looked like an empty text box
        has_versions = self.versions.count() > 1  # besides the "zero-shot only" entry
        self.use_button.setEnabled(not running and has_versions)
        self.rollback_button.setEnabled(not running and has_versions)

    def start_or_explain(self) -> str:
        """Press Retrain for the user (Model menu): "" when it started, else why it cannot."""
        reason = retrain_block_reason(self.project, self.worker is not None or self._job_running)
        if not reason:
            self.retrain_button.click()
        return reason

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
        self.clear_results()
        self.status.setText("Retraining…")
        self._job_running = True
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
        data = step.data if isinstance(step.data, dict) else {}
        round_note = f"round {data['round']}: " if "round" in data else ""
        self.status.setText(round_note + step.message)
        # The curve is the head's fit; the CaGNet generative step counts its own steps and
        # losses (its line drew back across the plot from the fit's last step to 0).
        if "loss" in data and data.get("phase", "fit") == "fit":
            self._plot_loss(int(data.get("round", 1)), data.get("step"), step.total, data["loss"])

    def _plot_loss(self, round_number: int, step: Any, total: int, loss: float) -> None:
        """Append one loss point at its training step, counting on across rounds; a dashed
        line marks where each round after the first starts."""
        if round_number != self._round:
            if self._round:
                self._offset += self._round_total
                self._mark_round(round_number)
            self._round = round_number
        self._round_total = total
        x = self._offset + (int(step) if step is not None else len(self._loss_x) + 1)
        self._loss_x.append(x)
        self._loss_y.append(float(loss))
        self.curve.setData(self._loss_x, self._loss_y)

    def _mark_round(self, round_number: int) -> None:
        pen = pg.mkPen(self.palette().color(QPalette.ColorRole.Mid), style=Qt.PenStyle.DashLine)
        mark = pg.InfiniteLine(
            self._offset, angle=90, pen=pen, label=f"round {round_number}",
            labelOpts={"position": 0.9, "color": self.palette().color(QPalette.ColorRole.Text)},
        )  # fmt: skip
        self.plot.addItem(mark)
        self.round_marks.append(mark)

    def on_finished(self, result: Any, cancelled: bool) -> None:
        """The job ended: show before/after, list the new version, ask for fresh proposals."""
        self._job_running = False
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
        self._job_running = False
        self.set_running(False)
        self.refresh()

    def show_metrics(self, before: Any, after: Any) -> None:
        """Fill the table from two MetricsReports (or their JSON dicts)."""
        from training.report import comparison_rows

        unseen = _unseen_names(after)
        rows = [r for r in comparison_rows(before, after) if unseen or r[0] not in GZS3_ROWS]
        self.table.setRowCount(len(rows))
        for row, (label, old, new) in enumerate(rows):
            self._fill_row(row, label, old, new, gzs3=label in GZS3_ROWS)

    def _fill_row(self, row: int, label: str, old: Any, new: Any, gzs3: bool) -> None:
        change = "-" if old is None or new is None else f"{100 * (new - old):+.1f}"
        missing = NO_PIXELS if gzs3 else "-"
        texts = (
            label,
            missing if old is None else _pct(old),
            missing if new is None else _pct(new),
        )
        for column, text in enumerate((*texts, change)):
            item = QTableWidgetItem(text)
            item.setToolTip(_row_tip(label, text))
            if column:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, column, item)

    @property
    def loss_points(self) -> list[float]:
        return list(self._loss_y)


def _unseen_names(report: Any) -> list[str]:
    names = report.get("unseen") if isinstance(report, dict) else getattr(report, "unseen", None)
    return list(names or ())


def _row_tip(label: str, text: str) -> str:
    if text == NO_PIXELS:
        return (
            "Not measurable: the held-out images have no pixels of the unseen classes, "
            "and none were predicted."
        )
    if label in GZS3_ROWS:
        return (
            "Seen: classes with labels; unseen (novel): no labels yet. hIoU: their harmonic mean."
        )
    return label
