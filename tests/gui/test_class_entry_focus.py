"""After typing classes, the keyboard goes back to the canvas: Enter (the classes are added) or
Escape (nothing added, the text kept) leave the class box, so the next B, E, F... picks a tool
instead of typing a letter into the box."""

from __future__ import annotations

from pathlib import Path

from _gui_helpers import TIMEOUT, open_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def _focused_window(qtbot, folder: Path):
    window = open_window(qtbot, folder)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=TIMEOUT)
    qtbot.mouseClick(window.classes.entry, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.classes.entry.hasFocus(), timeout=TIMEOUT)
    return window


def _press(qtbot, key: Qt.Key) -> None:
    """A key as the user presses it: it goes to whatever has the keyboard focus."""
    qtbot.keyClick(QApplication.focusWidget(), key)


def test_enter_adds_the_class_and_the_tool_keys_work_again(
    qtbot, image_folder: Path, planted
) -> None:
    window = _focused_window(qtbot, image_folder)
    qtbot.keyClicks(window.classes.entry, "sky, grass")
    qtbot.keyClick(window.classes.entry, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: [c.name for c in window.workspace.classes()] == ["sky", "grass"], timeout=TIMEOUT
    )
    assert window.canvas.hasFocus()
    _press(qtbot, Qt.Key.Key_E)
    assert window.canvas.tool.name == "eraser"
    assert window.actions["tool_eraser"].isChecked()
    _press(qtbot, Qt.Key.Key_F)
    assert window.canvas.tool.name == "fill"
    assert window.classes.entry.text() == ""  # no stray letters typed into the box


def test_escape_leaves_the_class_box_keeping_what_was_typed(
    qtbot, image_folder: Path, planted
) -> None:
    window = _focused_window(qtbot, image_folder)
    qtbot.keyClicks(window.classes.entry, "tre")
    assert window.canvas.tool.name == "brush"  # letters typed in the box stay letters
    _press(qtbot, Qt.Key.Key_Escape)
    assert window.canvas.hasFocus()
    _press(qtbot, Qt.Key.Key_E)
    assert window.canvas.tool.name == "eraser"
    assert window.classes.entry.text() == "tre"
    assert window.workspace.classes() == []


def test_the_class_box_hint_is_not_cut_off(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    window.resize(1400, 850)
    window.show()
    qtbot.waitExposed(window)
    entry = window.classes.entry
    hint = entry.placeholderText()
    assert "Enter" in hint
    margins = entry.textMargins().left() + entry.textMargins().right() + 12  # frame and padding
    assert entry.fontMetrics().horizontalAdvance(hint) + margins <= entry.width(), entry.width()
