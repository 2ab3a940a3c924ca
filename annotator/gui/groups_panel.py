"""The Groups dock: MaskContrast groups of the folder, named once for every image.

Each group is shown as a strip of its top images with the group highlighted (the rest dimmed).
"Group folder" runs ``training.grouping.group_folder`` where the segmenter lives (the main window
passes :meth:`GroupsPanel.job_factory` to ``Workspace.start_batch`` and forwards progress); the
strips are rendered and groups named in superqt workers, never on the GUI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import shiboken6
from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from annotator.gui._imports import module_ready
from annotator.progress import Progress
from annotator.wording import plural

_ID_ROLE = 0x0100  # Qt.ItemDataRole.UserRole
STRIP_IMAGES = 3
THUMB_HEIGHT = 64


def _thumbnail(image: np.ndarray, groups: np.ndarray, group_id: int) -> np.ndarray:
    """uint8 [THUMB_HEIGHT, w, 3]: ``image`` with ``group_id``'s pixels bright, the rest dim."""
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * THUMB_HEIGHT / height)), THUMB_HEIGHT)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    inside = cv2.resize(
        (groups == group_id).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
    )
    small[inside == 0] *= 0.25
    small[inside == 1] = 0.7 * small[inside == 1] + 0.3 * np.array([255, 220, 0], np.float32)
    return small.astype(np.uint8)


def render_strips(project: Any, result: Any) -> dict[int, np.ndarray]:
    """Group id -> uint8 [THUMB_HEIGHT, W, 3] strip of its top images (runs in a worker)."""
    from training.grouping import load_group_map

    strips = {}
    for info in result.groups:
        thumbs = []
        for relpath in info.images[:STRIP_IMAGES]:
            groups = load_group_map(project, relpath)
            if groups is not None:
                thumbs.append(_thumbnail(project.load_image(relpath), groups, info.id))
                thumbs.append(np.zeros((THUMB_HEIGHT, 3, 3), np.uint8))
        if thumbs:
            strips[info.id] = np.concatenate(thumbs[:-1], axis=1)
    return strips


def _to_pixmap(strip: np.ndarray) -> QPixmap:
    strip = np.ascontiguousarray(strip)
    height, width = strip.shape[:2]
    image = QImage(strip.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class GroupsPanel(QWidget):
    group_requested = Signal()  # the user clicked "Group folder" (main window: start the job)
    cancel_requested = Signal()
    proposals_written = Signal(list)  # relative paths that got new proposals

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Any = None
        self.result: Any = None
        self.config: Any = None  # a training.grouping.GroupConfig; None = defaults (K from the box)
        self.worker: Any = None
        self._stop = threading.Event()
        self._build()
        self.set_running(False)

    def _build(self) -> None:
        self.k_box = QSpinBox()
        self.k_box.setRange(2, 64)
        self.k_box.setValue(8)
        self.k_box.setPrefix("K = ")
        self.group_button = QPushButton("Group folder")
        self.group_button.setToolTip("Group every image of the folder by appearance (no labels)")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.status = QLabel("Not grouped yet.")
        self.status.setWordWrap(True)
        self.groups = QListWidget()
        self.groups.setIconSize(QSize(STRIP_IMAGES * (THUMB_HEIGHT * 4 // 3 + 3), THUMB_HEIGHT))
        self.groups.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.name_button = QPushButton("Name this group…")
        self.merge_button = QPushButton("Merge")
        self.split_button = QPushButton("Split")
        self._lay_out()
        self.group_button.clicked.connect(self.group_requested)
        self.cancel_button.clicked.connect(self._cancel)
        self.name_button.clicked.connect(self.name_selected)
        self.merge_button.clicked.connect(self.merge_selected)
        self.split_button.clicked.connect(self.split_selected)
        self.groups.itemSelectionChanged.connect(self._update_buttons)

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        for widget in (self.k_box, self.group_button, self.cancel_button):
            top.addWidget(widget)
        edit = QHBoxLayout()
        for widget in (self.name_button, self.merge_button, self.split_button):
            edit.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.groups, 1)
        layout.addLayout(edit)

    # -- state -------------------------------------------------------------------------------

    def set_project(self, project: Any) -> None:
        self.project = project
        self.refresh()

    def refresh(self) -> None:
        """Reload the stored grouping and render its strips in a worker."""
        self.groups.clear()
        if self.project is not None and not module_ready("training.grouping", self, self.refresh):
            self.result = None
            self.status.setText("Loading…")  # (shown again once torch is imported)
            self._update_buttons()
            return
        from training.grouping import load_grouping

        self.result = None if self.project is None else load_grouping(self.project)
        if self.result is None:
            self.status.setText("Not grouped yet: choose K and click Group folder.")
            self._update_buttons()
            return
        self.k_box.setValue(max(2, self.result.k))
        for info in self.result.groups:
            self.groups.addItem(self._item(info))
        self.status.setText(
            f"{plural(len(self.result.groups), 'group')} over {plural(len(self.result.images), 'image')}"
        )
        self._update_buttons()
        self._run(render_strips, (self.project, self.result), self._show_strips)

    @staticmethod
    def _item(info: Any) -> QListWidgetItem:
        names = ", ".join(info.suggested_names[:3])
        text = f"Group {info.id}: {plural(len(info.images), 'image')}" + (
            f" — {names}" if names else ""
        )
        item = QListWidgetItem(text)
        item.setToolTip(text)
        item.setData(_ID_ROLE, info.id)
        return item

    def _show_strips(self, strips: dict[int, np.ndarray]) -> None:
        for row in range(self.groups.count()):
            item = self.groups.item(row)
            strip = strips.get(item.data(_ID_ROLE))
            if strip is not None:
                item.setIcon(QIcon(_to_pixmap(strip)))

    def selected_ids(self) -> list[int]:
        return [item.data(_ID_ROLE) for item in self.groups.selectedItems()]

    def _update_buttons(self) -> None:
        count, idle = len(self.selected_ids()), self.worker is None
        self.name_button.setEnabled(idle and count == 1)
        self.split_button.setEnabled(idle and count == 1)
        self.merge_button.setEnabled(idle and count >= 2)

    def set_running(self, running: bool) -> None:
        self.group_button.setEnabled(not running)
        self.k_box.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)

    # -- the grouping job (run by the main window where the segmenter lives) ------------------

    def job_factory(self) -> Callable[..., Any]:
        """For ``EngineWorker.start_batch``: ``factory(project, segmenter, adapter, stop)``."""
        from training.grouping import group_folder

        k, config = self.k_box.value(), self.config

        def factory(project: Any, segmenter: Any, adapter: Any, should_stop: Any) -> Any:
            return group_folder(project, segmenter, k, config, should_stop)

        self.set_running(True)
        self.status.setText(f"Grouping into {k} groups…")
        return factory

    def on_progress(self, step: Progress) -> None:
        self.progress.setMaximum(max(1, step.total))
        self.progress.setValue(step.done)
        self.status.setText(step.message)

    def on_finished(self, result: Any, cancelled: bool) -> None:
        self.set_running(False)
        if cancelled:
            self.status.setText("Grouping cancelled; Group folder continues where it stopped.")
            return
        self.refresh()

    def on_failed(self, message: str) -> None:
        self.set_running(False)
        self.status.setText(f"Grouping failed: {message}")

    def _cancel(self) -> None:
        self._stop.set()
        self.cancel_requested.emit()

    # -- editing ---------------------------------------------------------------------------------

    def _run(self, function: Callable[..., Any], args: tuple, done: Callable[[Any], None]) -> None:
        """Run ``function(*args)`` in a superqt worker; ``done(result)`` on the GUI thread."""
        from superqt.utils import create_worker

        # The panel shows the error; without _ignore_errors superqt also re-raises it in the event
        # loop. A worker still reading a project that was closed meanwhile (another folder was
        # opened, the window closed and this panel deleted) reports to nobody.
        project = self.project
        worker = create_worker(function, *args, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result: done(result) if self._wants(project) else None)
        worker.errored.connect(
            lambda error: (
                self.status.setText(f"Failed: {error}") if self._wants(project) else None
            )
        )
        worker.finished.connect(self._worker_done)
        self.worker = worker
        self._update_buttons()
        worker.start()

    def _wants(self, project: Any) -> bool:
        """Whether a worker's answer about ``project`` still has somewhere to go: this panel
        was not deleted (its window closed) and still shows ``project``, which is still open."""
        return (
            shiboken6.isValid(self)
            and self.project is project
            and not getattr(project, "closed", False)
        )

    def _worker_done(self) -> None:
        self.worker = None
        self._update_buttons()

    def name_selected(self) -> None:
        """Ask for a class (pick one or type a new one) and write proposals for the group."""
        ids = self.selected_ids()
        if len(ids) != 1 or self.project is None:
            return
        classes = self.project.list_classes()
        suggested = self.result.group(ids[0]).suggested_names if self.result else []
        names = [c.name for c in classes] + [n for n in suggested
                                             if n.lower() not in {c.name.lower() for c in classes}]  # fmt: skip
        name, ok = QInputDialog.getItem(
            self, "Name this group", f"Class for group {ids[0]} (pick or type a new name):",
            names, 0, True,
        )  # fmt: skip
        if ok and name.strip():
            self._run(_name_group, (self.project, ids[0], name.strip()), self._named)
            self.status.setText(f"Writing proposals for '{name.strip()}'…")

    def _named(self, written: list[str]) -> None:
        self.refresh()
        self.status.setText(f"Proposals written on {plural(len(written), 'image')}.")
        self.proposals_written.emit(written)

    def merge_selected(self) -> None:
        from training.grouping import merge_groups

        ids = sorted(self.selected_ids())
        if len(ids) >= 2:
            self._run(merge_groups, (self.project, ids[0], ids[1:]), lambda _: self.refresh())

    def split_selected(self) -> None:
        from training.grouping import split_group

        ids = self.selected_ids()
        if len(ids) == 1:
            self._run(split_group, (self.project, ids[0]), lambda _: self.refresh())


def _name_group(project: Any, group_id: int, name: str) -> list[str]:
    """Find or create the class ``name`` and write the group's proposals (worker thread)."""
    from annotator.progress import run_job
    from training.grouping import name_group

    info = project.find_class(name) or project.add_class(name)
    return run_job(name_group(project, group_id, info.id))


def install_groups_dock(window: Any) -> GroupsPanel:
    """Add the Groups dock to the main window (tabbed with Retrain) and wire it to the
    window's workspace: the job runs in the engine thread like retraining."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDockWidget

    panel = GroupsPanel()
    dock = QDockWidget("Groups", window)
    dock.setObjectName("Groups")
    dock.setWidget(panel)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    neighbour = window.findChild(QDockWidget, "Retrain") or window.findChild(QDockWidget, "Classes")
    if neighbour is not None:
        window.tabifyDockWidget(neighbour, dock)
    classes = window.findChild(QDockWidget, "Classes")
    if classes is not None:  # a new user starts by typing class names, not on the last tab
        classes.raise_()
    workspace = window.workspace

    def start() -> None:
        if workspace.project is None:
            return
        if not workspace.start_batch(panel.job_factory(), "group", needs_model=False):
            panel.on_failed("another job is running")

    panel.group_requested.connect(start)
    panel.cancel_requested.connect(workspace.cancel_batch)
    panel.proposals_written.connect(lambda _: workspace.records_changed.emit())
    return panel
