"""The main window: composes the panels, canvas, actions and status bar around a Workspace."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from annotator.errors import AnnotatorError
from annotator.gui._settings import AppSettings, save_settings
from annotator.gui.canvas import CanvasView
from annotator.gui.class_panel import ClassPanel
from annotator.gui.dialogs import SettingsDialog, ShortcutsDialog, TransferDialog
from annotator.gui.image_list import ImageListPanel
from annotator.gui.jobs import JobRunner
from annotator.gui.loader import ImageBundle
from annotator.gui.model_controls import ModelControls
from annotator.gui.notices import ModelBanner, NotificationBar
from annotator.gui.segments import show_segments
from annotator.gui.workspace import Workspace
from annotator.wording import plural


def _install_groups_dock(window: Any) -> Any:
    from annotator.gui.groups_panel import install_groups_dock

    return install_groups_dock(window)


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings) -> None:
        super().__init__()
        self.setWindowTitle("annotator")
        self.setAcceptDrops(True)
        self.settings = settings
        self.workspace = Workspace(settings, self)
        self.canvas = CanvasView()
        self.images = ImageListPanel()
        self.classes = ClassPanel()
        self.banner = ModelBanner()
        self.notice = NotificationBar()
        self.jobs = JobRunner(self)
        self.batch_bar = QProgressBar()
        self.actions: dict[str, QAction] = {}
        self.training: Any = None
        self._opening: Any = None  # the worker opening a folder's store, while it runs
        self._closed = False  # closeEvent ran: a folder that finishes opening is let go
        self._build_layout()
        self._build_training_dock()
        self.groups_panel = _install_groups_dock(self)
        self._build_status_bar()
        self._build_actions()
        self.model_controls = ModelControls(self)
        self._connect()
        self.classes.opacity.setValue(round(settings.opacity * 100))
        self.resize(1400, 900)
        self._size_docks()

    # -- construction --------------------------------------------------------------------------

    def _build_layout(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.banner)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.notice)
        self.setCentralWidget(central)
        for title, widget, area in (
            ("Images", self.images, Qt.DockWidgetArea.LeftDockWidgetArea),
            ("Classes", self.classes, Qt.DockWidgetArea.RightDockWidgetArea),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(title)
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
            self.addDockWidget(area, dock)

    def _size_docks(self) -> None:
        """Side panels start narrow so the canvas gets the room."""
        docks = [self.findChild(QDockWidget, name) for name in ("Images", "Classes", "Retrain")]
        docks = [d for d in docks if d is not None]
        widths = [260 if d.objectName() == "Images" else 320 for d in docks]
        self.resizeDocks(docks, widths, Qt.Orientation.Horizontal)

    def _build_training_dock(self) -> None:
        """The retraining panel (package ``training``), tabbed with the class panel."""
        from annotator.gui.training_panel import TrainingPanel

        self.training = TrainingPanel()
        dock = QDockWidget("Retrain", self)
        dock.setObjectName("Retrain")
        dock.setWidget(self.training)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        classes_dock = self.findChild(QDockWidget, "Classes")
        if classes_dock is not None:
            self.tabifyDockWidget(classes_dock, dock)
            classes_dock.raise_()
        self.training.retrain_requested.connect(self._retrain)
        self.training.cancel_requested.connect(self.workspace.cancel_batch)
        self.training.version_changed.connect(lambda _: self.workspace.reload_adapter())
        self.workspace.records_changed.connect(self.training.update_state)

    def _retrain(self) -> None:
        if self.workspace.project is None:
            return
        self.workspace.save_now()
        factory = self.training.job_factory()
        if not self.workspace.start_batch(factory, "train", needs_model=False):
            self.training.on_failed("another job is running")

    def _build_status_bar(self) -> None:
        self.model_label = QLabel("Model: —")
        self.device_label = QLabel("Device: —")
        self.latency_label = QLabel("Proposal: —")
        self.autosave_label = QLabel("No changes")
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(190)
        self.model_label.setMinimumWidth(150)
        self.device_label.setMinimumWidth(100)
        self.autosave_label.setMinimumWidth(120)
        self.latency_label.setMinimumWidth(110)
        self.batch_label = QLabel("")  # the last propose-all's outcome; stays until the next
        self.batch_bar.setMaximumWidth(200)
        self.batch_bar.hide()
        bar = self.statusBar()
        for widget in (self.cursor_label, self.batch_bar, self.batch_label, self.model_label,
                       self.device_label,
                       self.latency_label, self.autosave_label):  # fmt: skip
            bar.addPermanentWidget(widget)

    def _action(
        self,
        key: str,
        text: str,
        slot: Any,
        shortcut: str | QKeySequence = "",
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)
        self.actions[key] = action
        return action

    def _build_actions(self) -> None:
        menus = self.menuBar()
        file = menus.addMenu("&File")
        file.addAction(
            self._action("open", "Open folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        )
        self.recent_menu = file.addMenu("Recent projects")
        file.addAction(self._action("import", "Import labels…", self.import_labels, "Ctrl+I"))
        file.addAction(self._action("export", "Export labels…", self.export_labels, "Ctrl+E"))
        file.addSeparator()
        file.addAction(self._action("settings", "Settings…", self.open_settings, "Ctrl+,"))
        file.addAction(self._action("quit", "Quit", self.close, QKeySequence.StandardKey.Quit))
        edit = menus.addMenu("&Edit")
        edit.addAction(self._action("undo", "Undo", self.undo, QKeySequence.StandardKey.Undo))
        edit.addAction(self._action("redo", "Redo", self.redo, "Ctrl+Shift+Z"))
        self._action("redo2", "Redo", self.redo, "Ctrl+Y")
        view = menus.addMenu("&View")
        view.addAction(self._action("fit", "Fit to window", self.canvas.fit, "Ctrl+0"))
        view.addAction(self._action("one", "Actual pixels (1:1)", self.canvas.one_to_one, "Ctrl+1"))
        view.addAction(self._action("outline", "Outline mode", self.classes.outline.toggle, "O"))
        self._build_tool_actions(menus.addMenu("&Tools"))
        self._build_model_actions(menus.addMenu("&Model"))
        nav = menus.addMenu("&Go")
        nav.addAction(self._action("next", "Next image", lambda: self.step_image(1), "D"))
        nav.addAction(self._action("previous", "Previous image", lambda: self.step_image(-1), "S"))
        nav.addAction(
            self._action("reviewed", "Mark reviewed and go to next", self.mark_reviewed, "N")
        )
        self._action("reviewed2", "Mark reviewed and go to next", self.mark_reviewed, "Ctrl+Return")
        self.model_toolbar.addAction(self.actions["reviewed"])
        self._style_toolbar()
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(
            self._action("shortcuts", "Keyboard shortcuts", self.show_shortcuts, "F1")
        )
        for number in range(1, 10):
            self._action(
                f"class{number}",
                f"Select class {number}",
                lambda _=False, n=number: self.classes.select_number(n),
                str(number),
            )
        self.update_recent_menu()

    def _style_toolbar(self) -> None:
        from annotator.gui.toolbar import add_fill_tolerance, style_toolbar

        toolbar = self.model_toolbar
        first = toolbar.actions()[0]
        toolbar.insertActions(first, [self.actions["open"], self.actions["export"]])
        toolbar.insertSeparator(first)
        style_toolbar(toolbar, self.actions)
        self.fill_tolerance = add_fill_tolerance(toolbar, self.actions["tool_fill"], self.canvas)

    def _build_tool_actions(self, menu: Any) -> None:
        toolbar = QToolBar("Tools")
        toolbar.setObjectName("tools")
        self.addToolBar(toolbar)
        for name, tool in self.canvas.tools.items():
            action = self._action(
                f"tool_{name}",
                tool.title,
                lambda _=False, n=name: self.set_tool(n),
                tool.shortcut,
                True,
            )
            action.setToolTip(f"{tool.title} ({tool.shortcut}): {tool.help}")
            menu.addAction(action)
            toolbar.addAction(action)
        self.actions["tool_brush"].setChecked(True)
        toolbar.addSeparator()
        self.model_toolbar = toolbar

    def _build_model_actions(self, menu: Any) -> None:
        for key, text, slot, shortcut in (
            ("propose", "Propose", self.workspace.request_proposal, "Ctrl+P"),
            ("propose_all", "Propose all…", self.propose_all, "Ctrl+Shift+P"),
            ("accept", "Accept proposal", self.workspace.accept_proposal, "A"),
            ("stop", "Stop proposing", self.workspace.stop_proposing, "Ctrl+."),
        ):
            action = self._action(key, text, slot, shortcut)
            menu.addAction(action)
            self.model_toolbar.addAction(action)
        menu.addSeparator()  # Retrain lived only in a tab behind Classes
        menu.addAction(self._action("retrain", "Retrain on my labels", self.retrain_from_menu))

    def retrain_from_menu(self) -> None:
        """Show the Retrain panel and start retraining, or say in the status bar why not."""
        self.findChild(QDockWidget, "Retrain").raise_()
        reason = self.training.start_or_explain()
        if reason:  # its first sentence fits the status bar; the panel shows all of it
            self.statusBar().showMessage(reason.split(". ")[0].rstrip(".") + ".", 10000)

    def _connect(self) -> None:
        ws = self.workspace
        ws.records_changed.connect(self.refresh_records)
        ws.classes_changed.connect(self.refresh_classes)
        ws.memory_changed.connect(self.refresh_classes)
        self.classes.memory_toggled.connect(ws.set_memory_enabled)
        ws.image_shown.connect(self.show_bundle)
        ws.proposal_shown.connect(self.show_proposal)
        ws.autosave_state.connect(self.autosave_label.setText)
        ws.notify.connect(self.notice.show_message)
        ws.notify.connect(lambda *_: self.statusBar().clearMessage())
        ws.message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        ws.batch_progress.connect(self._batch_progress)
        ws.batch_finished.connect(self._batch_finished)
        self.canvas.edited.connect(ws.edited)
        self.canvas.edited.connect(self._update_undo_actions)
        self.canvas.class_picked.connect(self.classes.select)
        self.canvas.failed.connect(self.notice.show_message)
        self.canvas.message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.canvas.cursor_moved.connect(self._cursor_moved)
        self.images.image_activated.connect(ws.open_image)
        self.images.filter_changed.connect(self.refresh_records)
        self.classes.add_requested.connect(lambda name, syn: self._class_op("add_class", name, syn))
        self.classes.typing_done.connect(
            lambda: self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)
        )
        self.classes.rename_requested.connect(self._rename_class)
        self.classes.merge_requested.connect(lambda s, t: self._class_op("merge_classes", s, t))
        self.classes.delete_requested.connect(lambda c: self._class_op("delete_class", c))
        self.classes.current_changed.connect(self._current_class)
        self.classes.hidden_changed.connect(lambda _: self.refresh_classes())
        self.classes.opacity_changed.connect(self._opacity)
        self.classes.outline_changed.connect(self.canvas.set_outline_only)

    # -- project and images ------------------------------------------------------------------

    def open_folder(self, folder: str | Path) -> None:
        """Open ``folder`` as a project. Scanning a big folder takes a while, so the store opens
        in a worker thread; the window stays usable and says what it is doing."""
        from superqt.utils import create_worker

        from annotator.project import Project

        current = self.workspace.project
        if current is not None and Path(folder).resolve() == current.root:
            return
        if self.jobs.busy:  # an import or export works in the open folder
            self._open_after_the_job(folder)
            return
        self.statusBar().showMessage(f"Opening {folder}…")
        # _project_failed shows the error; without _ignore_errors superqt also re-raises it
        worker = create_worker(Project.open, folder, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._project_opened)
        worker.errored.connect(self._project_failed)
        worker.finished.connect(self._opening_done)
        self._opening = worker  # keep a reference until it finishes
        worker.start()

    def _open_after_the_job(self, folder: str | Path) -> None:
        """Opening another folder closes this one, under a running import or export: ask to
        cancel the job (it stops after its current image), then open ``folder`` once it has."""
        doing = self.jobs.title.rstrip("…. ").lower() or "a job"
        question = (
            f"{doing.capitalize()} is still running in this folder. Cancel it and open "
            f"{folder}?\n\nWhat it has written so far stays."
        )
        answer = QMessageBox.question(self, "A job is running", question)
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.statusBar().showMessage(f"Stopping {doing}, then opening {folder}…")
        self.jobs.ended.connect(
            lambda: self.open_folder(folder), Qt.ConnectionType.SingleShotConnection
        )
        self.jobs.cancel()

    def _project_failed(self, error: BaseException) -> None:
        if self._closed:
            return  # nobody reads it, and the engine thread has stopped
        self.statusBar().clearMessage()
        details = "".join(traceback.format_exception(error))
        text = (
            str(error) if isinstance(error, AnnotatorError) else f"Cannot open the folder: {error}"
        )
        self.notice.show_message(text, details)
        if self.workspace.project is None:
            self.workspace.configure_engine()  # the banner still tells about the model

    def _opening_done(self) -> None:
        self._opening = None

    def _project_opened(self, project: Any) -> None:
        if self._closed:  # the window closed while the store opened: leave the folder free
            project.close()
            return
        self.statusBar().clearMessage()
        self.workspace.open_project(project)
        if self.training is not None:
            self.training.set_project(project)
        self.batch_label.setText("")  # the last project's propose-all / export outcome
        self.latency_label.setText("Proposal: —")  # (and its last proposal time)
        self.groups_panel.set_project(project)
        self.settings.add_recent(project.root)
        save_settings(self.settings)
        self.update_recent_menu()
        self.setWindowTitle(f"annotator — {project.root}")
        records = self.workspace.records()
        self.workspace.order = [r.relpath for r in records]
        readable = [r for r in records if not r.error] or records
        if readable:
            self.workspace.open_image(readable[0].relpath)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open image folder")
        if folder:
            self.open_folder(folder)

    def update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent:
            self.recent_menu.addAction(folder, lambda f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(bool(self.settings.recent))

    def refresh_records(self) -> None:
        ws = self.workspace
        every = ws.records()
        shown = ws.records(self.images.filter_key) if self.images.filter_key else every
        self.images.show_records(shown, every, None if ws.project is None else ws.project.root)
        ws.order = self.images.order()
        if ws.wanted:
            self.images.select(ws.wanted)

    def refresh_classes(self) -> None:
        classes = self.workspace.classes()
        self.classes.set_classes(classes, {c.id for c in classes if not c.novel})
        self.classes.set_memory(self.workspace.memory_counts, self.workspace.memory_disabled())
        colors = {c.id: c.color for c in classes}
        self.canvas.set_classes(colors, self.classes.hidden_ids())

    def show_bundle(self, bundle: ImageBundle | None) -> None:
        if bundle is None:
            self.canvas.clear()
            return
        self.canvas.set_image(bundle.pyramid, bundle.document)
        self.canvas.set_proposal(bundle.proposal)
        self.images.select(bundle.relpath)
        self._update_undo_actions()
        self.statusBar().showMessage(bundle.relpath, 3000)

    def show_proposal(self, relpath: str, seconds: float) -> None:
        bundle = self.workspace.current
        if bundle is not None and bundle.relpath == relpath:
            self.canvas.set_proposal(bundle.proposal)
            show_segments(self.canvas, self.workspace, relpath)
            note = " (computed in advance)" if self.workspace.shown_in_advance else ""
            self.latency_label.setText(f"Proposal: {seconds * 1000:.0f} ms{note}")
            if self.statusBar().currentMessage() == "Proposing…":
                self.statusBar().clearMessage()

    def step_image(self, delta: int) -> None:
        order, wanted = self.workspace.order, self.workspace.wanted
        if not order:
            return
        index = order.index(wanted) + delta if wanted in order else 0
        self.workspace.open_image(order[max(0, min(len(order) - 1, index))])

    def mark_reviewed(self) -> None:
        following = self.workspace.mark_reviewed()
        if following is not None:
            self.workspace.open_image(following)
        else:
            self.statusBar().showMessage("Every image is reviewed.", 5000)

    # -- editing ----------------------------------------------------------------------------

    def set_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        for key, action in self.actions.items():
            if key.startswith("tool_"):
                action.setChecked(key == f"tool_{name}")

    def undo(self) -> None:
        doc = self.canvas.document
        if doc is not None and not doc.busy and doc.undo() is not None:
            self.workspace.edited()
        self._update_undo_actions()

    def redo(self) -> None:
        doc = self.canvas.document
        if doc is not None and not doc.busy and doc.redo() is not None:
            self.workspace.edited()
        self._update_undo_actions()

    def _update_undo_actions(self) -> None:
        doc = self.canvas.document
        self.actions["undo"].setText(f"Undo {doc.undo_name}" if doc and doc.can_undo else "Undo")
        self.actions["redo"].setText(f"Redo {doc.redo_name}" if doc and doc.can_redo else "Redo")

    def _class_op(self, action: str, *args: Any) -> None:
        result = self.workspace.change_classes(action, *args)
        if action == "add_class" and result is not None:
            self.workspace.project.set_novel(result.id, True)
            self.refresh_classes()
            self.classes.select(result.id)

    def _rename_class(self, class_id: int, name: str, synonyms: tuple[str, ...]) -> None:
        current = next((c for c in self.workspace.classes() if c.id == class_id), None)
        if current is not None and current.name != name:
            self.workspace.change_classes("rename_class", class_id, name)
        self.workspace.change_classes("set_synonyms", class_id, synonyms)

    def _current_class(self, class_id: int | None) -> None:
        self.canvas.current_class = class_id

    def _opacity(self, value: float) -> None:
        self.canvas.set_opacity(value)
        self.settings.opacity = value

    def _cursor_moved(self, x: int, y: int) -> None:
        self.cursor_label.setText(f"x {x}  y {y}  zoom {self.canvas.zoom:.0%}")

    # -- model ------------------------------------------------------------------------------

    def propose_all(self) -> None:
        if not self.workspace.state.available:
            self.notice.show_message("Propose all needs a model; see the banner or Settings.")
            return
        if not self.workspace.classes():
            self.statusBar().showMessage("Type at least one class first.", 5000)
            return
        if self.workspace.propose_all():
            self.batch_label.setText("")
            self.batch_bar.setValue(0)
            self.batch_bar.show()
            self._batch_button = self.statusBar().addPermanentWidget(self._cancel_button())

    def _cancel_button(self) -> QWidget:
        from PySide6.QtWidgets import QPushButton

        button = QPushButton("Cancel propose all")
        button.clicked.connect(self.workspace.cancel_batch)
        self._cancel_batch_button = button
        return button

    def _batch_progress(self, step: Any) -> None:
        if self.workspace.batch_kind == "group":
            return self.groups_panel.on_progress(step)
        if self.workspace.batch_kind == "train":
            if self.training is not None:
                self.training.on_progress(step)
            return
        self.batch_bar.setMaximum(max(1, step.total))
        self.batch_bar.setValue(step.done)
        self.batch_bar.setFormat("Propose all %v/%m")

    def _batch_finished(self, outcome: tuple[str | None, Any], cancelled: bool) -> None:
        kind, result = outcome
        if kind == "group":
            return self.groups_panel.on_finished(result, cancelled)
        if kind == "train":
            if self.training is not None:
                self.training.on_finished(result, cancelled)
            return
        self.batch_bar.hide()
        button = getattr(self, "_cancel_batch_button", None)
        if button is not None:
            button.deleteLater()
            self._cancel_batch_button = None
        if result is not None:
            text = f"Proposed {plural(result.proposed, 'image')} ({len(result.failed)} failed)"
            self.batch_label.setText(text + ("; cancelled" if cancelled else ""))
            self.batch_label.setToolTip(
                "\n".join(f"{path}: {why}" for path, why in result.failed.items())
            )

    def open_settings(self) -> None:
        from annotator.engine import list_heads

        dialog = SettingsDialog(self.settings, list_heads(), self)
        if dialog.exec():
            self.settings = dialog.result_settings()
            self.workspace.settings = self.settings
            save_settings(self.settings)
            self.workspace.configure_engine()

    # -- import / export ----------------------------------------------------------------------

    def export_labels(self) -> None:
        self._transfer(export=True)

    def import_labels(self) -> None:
        self._transfer(export=False)

    def _transfer(self, export: bool) -> None:
        from annotator.formats import (
            EXPORT_FORMATS,
            IMPORT_FORMATS,
            export_project,
            import_into_project,
        )

        if self.workspace.project is None:
            self.statusBar().showMessage("Open a folder first.", 4000)
            return
        if export:
            from annotator.gui.export_dialog import ExportDialog

            dialog = ExportDialog(EXPORT_FORMATS, self.settings.last_export_dir, self)
        else:
            dialog = TransferDialog(export, IMPORT_FORMATS, self)
        if not dialog.exec() or not dialog.path.text().strip():
            return
        if export:
            self.settings.last_export_dir = dialog.path.text().strip()
            save_settings(self.settings)
        self.workspace.save_now()
        self.workspace.wait_for_saves()
        job = export_project if export else import_into_project
        if self.jobs.busy:
            self.statusBar().showMessage("Wait for the running job to finish.", 5000)
            return
        target = dialog.path.text().strip()
        self.jobs.on_done = lambda report, e=export, t=target: self._transfer_done(report, e, t)
        title = "Exporting…" if export else "Importing…"
        self.jobs.start(
            title,
            job,
            self.workspace.project,
            dialog.format.currentText(),
            dialog.path.text().strip(),
            dialog.options(),
        )
        self.last_transfer_dialog = dialog

    def _transfer_done(self, report: Any, export: bool, target: str = "") -> None:
        text = report.summary("Exported" if export else "Imported")
        if export:
            text = text.replace(
                f"Exported {plural(report.written, 'image')}",
                f"Exported {plural(report.written, 'image')} to {target}",
                1,
            )
            self.batch_label.setText(text.splitlines()[0])
        self.statusBar().showMessage(text.splitlines()[0], 8000)
        if report.skipped:
            self.notice.show_message(text.splitlines()[0], text)
        if not export:
            self.workspace.loader.clear()
            self.workspace.current = None
            wanted, self.workspace.wanted = self.workspace.wanted, None
            self.workspace.classes_changed.emit()
            self.refresh_records()
            if wanted:
                self.workspace.open_image(wanted)

    # -- help, drag and drop, closing -------------------------------------------------------

    def shortcut_rows(self) -> list[tuple[str, str]]:
        rows = [
            (a.shortcut().toString(QKeySequence.SequenceFormat.NativeText), a.text())
            for a in self.actions.values()
            if not a.shortcut().isEmpty()
        ]
        rows += [
            ("Wheel", "Zoom"), ("Ctrl+Wheel  [  ]", "Brush / eraser size"),
            ("Space+drag, middle drag", "Pan"), ("Shift+click (Fill)", "Fill a proposal region"),
            ("Enter / double-click (Polygon)", "Close and fill the polygon"),
            ("Backspace / Esc (Polygon)", "Remove last point / cancel"),
        ]  # fmt: skip
        return rows

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self.shortcut_rows(), self).show()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls:
            self.open_folder(urls[0].toLocalFile())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        try:
            save_settings(self.settings)
        except OSError as error:
            QMessageBox.warning(self, "Settings not saved", str(error))
        self._closed = True
        self.workspace.shutdown()
        self.images.model.thumbnails.shutdown()
        super().closeEvent(event)
