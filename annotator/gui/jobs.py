"""Running the Qt-free batch jobs (export, import) in superqt workers, with progress and cancel."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget
from superqt.utils import create_worker

from annotator.progress import Progress


def _drive(
    factory: Callable[..., Any], args: tuple[Any, ...], should_stop: Callable[[], bool]
) -> Generator[Progress, None, Any]:
    """A generator function (superqt needs one) that runs ``factory(*args, should_stop)``."""
    return (yield from factory(*args, should_stop=should_stop))


class JobRunner(QObject):
    """One batch job at a time in a superqt worker thread, shown in a progress dialog."""

    finished = Signal(object)  # the job's result
    failed = Signal(str, str)  # message, details
    ended = Signal()  # after finished or failed

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self._stop = threading.Event()
        self.worker: Any = None
        self.dialog: QProgressDialog | None = None
        #: Called with the result of the next job that finishes (then forgotten).
        self.on_done: Callable[[Any], None] | None = None
        #: What the running job is doing, in words ("Exporting…"); empty when idle.
        self.title = ""

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def cancel(self) -> None:
        """Ask the running job to stop after its current step (nothing is left half written)."""
        self._stop.set()

    def start(self, title: str, factory: Callable[..., Any], *args: Any) -> None:
        self._stop.clear()
        self.title = title
        dialog = QProgressDialog(title, "Cancel", 0, 0, self._parent)
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.setMinimumDuration(0)
        dialog.canceled.connect(self._stop.set)
        self.dialog = dialog
        connections = {
            "yielded": self._progress,
            "returned": self._returned,
            "errored": self._errored,  # given here, superqt does not re-raise in the event loop
            "finished": self._done,
        }
        worker = create_worker(
            _drive, factory, args, self._stop.is_set, _start_thread=False, _connect=connections
        )
        self.worker = worker
        worker.start()

    def _progress(self, step: Progress) -> None:
        if self.dialog is not None:
            self.dialog.setMaximum(max(1, step.total))
            self.dialog.setValue(step.done)
            self.dialog.setLabelText(step.message)

    def _returned(self, result: Any) -> None:
        callback, self.on_done = self.on_done, None
        if callback is not None:
            callback(result)
        self.finished.emit(result)

    def _errored(self, error: BaseException) -> None:
        details = "".join(traceback.format_exception(error))
        self.failed.emit(str(error), details)

    def _done(self) -> None:
        if self.dialog is not None:
            self.dialog.reset()
            self.dialog.deleteLater()
        self.dialog = None
        self.worker = None
        self.on_done = None
        self.title = ""
        self.ended.emit()
