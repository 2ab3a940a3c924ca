"""Importing a labelme file from the window with the import options a user sets."""

from __future__ import annotations

import json
from pathlib import Path

from _gui_helpers import TIMEOUT, class_ids, open_window
from PySide6.QtCore import Qt


def test_import_labelme_with_fill_and_edited_status(
    qtbot, image_folder: Path, planted, tmp_path: Path, monkeypatch
) -> None:
    from annotator.gui.dialogs import TransferDialog

    folder = tmp_path / "labelme"
    folder.mkdir()
    rectangle = [[0, 0], [127, 9], [0, 9], [127, 0]]  # X-AnyLabeling's 4-point rectangle
    shapes = [{"label": "sky", "shape_type": "rectangle", "points": rectangle}]
    (folder / "scene_2.json").write_text(json.dumps({"shapes": shapes, "imagePath": "scene_2.png"}))
    window = open_window(qtbot, image_folder)
    shown = {}

    def fill_and_accept(dialog: TransferDialog) -> int:
        dialog.show()
        dialog.format.setCurrentText("labelme")
        qtbot.keyClicks(dialog.path, str(folder))
        qtbot.keyClicks(dialog.fill_unlabeled, "_background_")
        qtbot.mouseClick(dialog.as_edited, Qt.MouseButton.LeftButton)
        dialog.grab().save(str(tmp_path / "import_dialog.png"))
        shown["edited"] = dialog.as_edited.isChecked()
        return 1

    monkeypatch.setattr(TransferDialog, "exec", fill_and_accept)
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT):
        window.import_labels()
    assert shown["edited"]
    ids = class_ids(window)
    assert {"sky", "_background_"} <= set(ids)  # the class list shows both
    ws = window.workspace
    ws.open_image("scene_2.png")
    qtbot.waitUntil(
        lambda: ws.current is not None and ws.current.relpath == "scene_2.png", timeout=TIMEOUT
    )
    labels = ws.current.document.labels
    assert (labels[:10] == ids["sky"]).all() and (labels[10:] == ids["_background_"]).all()
    assert ws.project.get_image("scene_2.png").status == "edited"
    window.close()
