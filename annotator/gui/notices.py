"""Non-blocking notices: a notification strip for errors, and the model-weights banner.

Engine and store errors are written for the command line ("pass --pretrained PATH"); everything
shown here goes through :func:`gui_text` first, which says where the same fix is in the app.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

CHOOSE_FILE = "“Choose local file…”"
RANDOM_TIP = "Random weights: the masks are meaningless; for testing the workflow."

#: Command-line phrasings of a fix -> where the same fix is in the app (applied in order).
_GUI_PHRASES = (
    # The app never downloads without asking: "downloads are off" read like a broken setting.
    (r"they are not in the cache and downloads are off",
     "they are not downloaded yet (“Download weights” fetches them)"),
    (r"pass '?--pretrained PATH'? with a local weights file \(([^)]*)\)",
     rf"choose a local weights file (\1) with {CHOOSE_FILE}"),
    (r"pass '?--pretrained PATH'? with a complete (\S+) weights file",
     rf"choose a complete \1 weights file with {CHOOSE_FILE}"),
    (r"use its tag \(e\.g\. '?--pretrained (\w+)'?\)", r"enter its tag in Settings (e.g. \1)"),
    (r"[Pp]ass '?--pretrained PATH'? for a local file", f"Choose a local file with {CHOOSE_FILE}"),
    (r"'?--pretrained PATH'?", f"a local weights file ({CHOOSE_FILE})"),
    (r"'?--pretrained[ =](\w+)'?", r"the pretrained tag \1 (Settings)"),
    (r"'?--pretrained'?", "the pretrained tag or weights file (Settings)"),
    (r"[Pp]ass '?--classes(?: FILE)?'? with one (?:class )?name per line",
     "fill in “Class names” (comma-separated, in index order)"),
    (r"use --overwrite to replace them", "tick “Replace labels I already have” to replace them"),
    (r"--split must", "The train fraction must"),
    (r"--device (\w+) was asked for", r"The device \1 (Settings) was asked for"),
    (r"use --device (\w+) or (\w+)", r"choose the device \1 or \2 in Settings"),
    (r"'?--(model|head|device|short-side)(?: \w+)?'?", lambda m: f"the {m.group(1)} setting"),
)  # fmt: skip


def gui_text(message: str) -> str:
    """``message`` with command-line flags replaced by where the app offers the same fix."""
    for pattern, replacement in _GUI_PHRASES:
        message = re.sub(pattern, replacement, message)
    return message


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
        message = gui_text(message)
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
    """Shown while no zero-shot weights are loaded: manual labelling works; offers the fixes.

    One line says why; "Details" unfolds the full text (cache folder, URLs tried) below it.
    """

    download_requested = Signal()
    choose_file_requested = Signal()
    continue_requested = Signal()
    settings_requested = Signal()
    cancel_requested = Signal()
    random_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet("#banner { background: #fff3cd; color: #4a3b00; border-radius: 4px; }")
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)  # a long reason wraps instead of widening the window
        self.text.setMinimumWidth(200)
        self.details = QPlainTextEdit()  # selectable, scrolls: never covers the canvas
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(110)
        self.details.hide()
        self.details_button = QPushButton("Details ▸")
        self.details_button.setCheckable(True)
        self.download = QPushButton("Download weights")
        self.retry = QPushButton("Retry download")
        self.cancel = QPushButton("Cancel download")
        self.choose = QPushButton("Choose local file…")
        self.random = QPushButton("Try with random weights")
        self.random.setToolTip(RANDOM_TIP)
        self.settings = QPushButton("Settings…")
        self.skip = QPushButton("Continue without proposals")
        self._lay_out()
        self._connect()
        self._set_buttons(downloading=False, failed=False)
        self.hide()

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.text, 1)
        top.addWidget(self.details_button)
        buttons = QHBoxLayout()
        for button in (self.download, self.retry, self.cancel, self.choose, self.random,
                       self.settings, self.skip):  # fmt: skip
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.details)

    def _connect(self) -> None:
        self.download.clicked.connect(self.download_requested.emit)
        self.retry.clicked.connect(self.download_requested.emit)
        self.choose.clicked.connect(self.choose_file_requested.emit)
        self.random.clicked.connect(self.random_requested.emit)
        self.skip.clicked.connect(self.continue_requested.emit)
        self.settings.clicked.connect(self.settings_requested.emit)
        self.cancel.clicked.connect(self.cancel_requested.emit)
        self.details_button.toggled.connect(self._toggle_details)

    def _toggle_details(self, shown: bool) -> None:
        self.details.setVisible(shown)
        self.details_button.setText("Details ▾" if shown else "Details ▸")

    def _set_buttons(self, downloading: bool, failed: bool) -> None:
        self.download.setVisible(not downloading and not failed)
        self.retry.setVisible(failed and not downloading)
        self.cancel.setVisible(downloading)

    def _set_text(self, headline: str, reason: str, details: str) -> None:
        line = _first_line(gui_text(reason))
        self.text.setText(f"<b>{headline}</b> {line}")
        self.details.setPlainText(gui_text(details))
        self.details_button.setVisible(bool(details.strip()) and details.strip() != line)
        self.details_button.setChecked(False)

    def show_missing(self, reason: str, details: str = "") -> None:
        """No weights: one line of why, the full ``reason`` (and ``details``) under Details."""
        full = "\n\n".join(p for p in (reason.strip(), details.strip()) if p)
        self._set_text(
            "Proposals are off: no zero-shot model weights. Manual labelling works.",
            reason or "No model weights are loaded.", full,
        )  # fmt: skip
        self._set_buttons(downloading=False, failed=False)
        self.show()

    def show_download_failed(
        self, reason: str, details: str = "", headline: str = "The download failed:"
    ) -> None:
        """The download stopped: its one-line reason, the URLs tried under Details, Retry."""
        full = "\n\n".join(p for p in (reason.strip(), details.strip()) if p)
        self._set_text(headline, reason or "unknown error", full)
        self._set_buttons(downloading=False, failed=True)
        self.show()

    def set_downloading(self, active: bool, text: str = "") -> None:
        self._set_buttons(downloading=active, failed=False)
        if text:
            self.text.setText(f"<b>{text}</b>")
            self.details_button.hide()
            self.details.hide()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
