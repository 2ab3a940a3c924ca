"""What a new user reads in the first minutes: the weights banner, the shortcuts list."""

from __future__ import annotations

from pathlib import Path

from _gui_helpers import TIMEOUT
from PySide6.QtCore import Qt

from annotator.gui.app import create_window


def test_the_banner_says_the_weights_are_not_downloaded_yet(qtbot, image_folder: Path) -> None:
    window = create_window(image_folder)  # default ViT-B-16:openai, not in the (empty) cache
    qtbot.addWidget(window)
    banner = window.banner
    qtbot.waitUntil(banner.isVisible, timeout=TIMEOUT)
    line = banner.text.text()
    assert "they are not downloaded yet (“Download weights” fetches them)" in line
    assert (
        "downloads are off" not in line and "downloads are off" not in banner.details.toPlainText()
    )
    assert banner.download.isVisible() and banner.download.text() == "Download weights"
    window.close()


def test_typing_in_the_shortcuts_list_changes_nothing(qtbot, image_folder: Path, planted) -> None:
    from _gui_helpers import open_window

    from annotator.gui.dialogs import ShortcutsDialog

    window = open_window(qtbot, image_folder)
    dialog = ShortcutsDialog(window.shortcut_rows(), window)
    qtbot.addWidget(dialog)
    dialog.show()
    table = dialog.table
    before = [table.item(r, 1).text() for r in range(table.rowCount())]
    table.setCurrentCell(0, 1)
    table.setFocus()
    qtbot.keyClicks(table, "1x")
    qtbot.keyClick(table, Qt.Key.Key_F2)
    qtbot.keyClicks(table, "zz")
    qtbot.keyClick(table, Qt.Key.Key_Return)
    qtbot.mouseDClick(
        table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=table.visualItemRect(table.item(1, 1)).center(),
    )
    qtbot.keyClicks(table.viewport(), "yy")
    assert [table.item(r, 1).text() for r in range(table.rowCount())] == before
    assert "Open folder…" in before
    window.close()
