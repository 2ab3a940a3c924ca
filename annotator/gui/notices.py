"""Non-blocking notices: a notification strip for errors, and the model-weights banner."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QWidget,
)


class NotificationBar(QFrame):
    """Shows the latest worker error without blocking; "Details…" opens the traceback."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notification")
        self.setStyleSheet(
            "#notification { background: #5c2b29; color: white; border-radius: 4px; }"
        )
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.details_button = QPushButton("Details…")
        close = QPushButton("Dismiss")
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.details_button)
        layout.addWidget(close)
        self.details_button.clicked.connect(self._show_details)
        close.clicked.connect(self.hide)
        self._details = ""
        self.history: list[str] = []
        self.hide()

    def show_message(self, message: str, details: str = "") -> None:
        self.history.append(message)
        self.text.setText(message)
        self._details = details
        self.details_button.setVisible(bool(details))
        self.show()

    def _show_details(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Details", self.text.text(), parent=self)
        box.setDetailedText(self._details)
        box.setModal(False)
        box.show()


class ModelBanner(QFrame):
    """Shown while no zero-shot weights are loaded: manual labelling works; offers the fixes."""

    download_requested = Signal()
    choose_file_requested = Signal()
    continue_requested = Signal()
    settings_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet("#banner { background: #fff3cd; color: #4a3b00; border-radius: 4px; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.download = QPushButton("Download weights")
        self.choose = QPushButton("Choose local file…")
        self.settings = QPushButton("Settings…")
        self.skip = QPushButton("Continue without proposals")
        self.cancel = QPushButton("Cancel download")
        self.cancel.hide()
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        for button in (self.download, self.cancel, self.choose, self.settings, self.skip):
            layout.addWidget(button)
        self.download.clicked.connect(self.download_requested.emit)
        self.choose.clicked.connect(self.choose_file_requested.emit)
        self.skip.clicked.connect(self.continue_requested.emit)
        self.settings.clicked.connect(self.settings_requested.emit)
        self.cancel.clicked.connect(self.cancel_requested.emit)
        self.hide()

    def show_missing(self, reason: str) -> None:
        first = reason.strip().splitlines()[0] if reason.strip() else "No model weights are loaded."
        self.text.setText(
            "<b>Proposals are off: no zero-shot model weights.</b> Manual labelling works. "
            f"<br><small>{first}</small>"
        )
        self.text.setToolTip(reason)
        self.set_downloading(False)
        self.show()

    def set_downloading(self, active: bool, text: str = "") -> None:
        self.download.setVisible(not active)
        self.cancel.setVisible(active)
        if text:
            self.text.setText(text)
