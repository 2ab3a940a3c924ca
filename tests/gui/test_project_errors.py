"""Opening a project whose data is damaged: the app says what happened and what to do."""

from __future__ import annotations

from pathlib import Path

from _gui_helpers import TIMEOUT

from annotator.gui.app import create_window
from annotator.project import Project


def test_a_damaged_project_database_is_explained(
    qtbot, image_folder: Path, planted, shots: Path
) -> None:
    Project.open(image_folder).close()
    (image_folder / ".annotator" / "project.db").write_bytes(b"this is not a database" * 300)
    window = create_window(image_folder)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=TIMEOUT)
    text = window.notice.text.text()
    assert "is damaged" in text and "project.db.damaged" in text and "Traceback" not in text
    assert window.workspace.project is None
    window.grab().save(str(shots / "project_damaged.png"))
    window.close()
