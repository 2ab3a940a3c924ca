"""The main user flow, end to end, with the planted segmenter behind the app's engine seam."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _gui_helpers import TIMEOUT, add_class, class_ids, click, drag, open_window
from PySide6.QtCore import Qt

from annotator.gui.dialogs import TransferDialog


def test_label_review_reopen_and_export(
    qtbot, image_folder: Path, planted, shots: Path, tmp_path: Path, monkeypatch
) -> None:
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    add_class(window, "grass; lawn")
    ids = class_ids(window)
    assert set(ids) == {"sky", "grass"}
    assert window.workspace.classes()[1].synonyms == ("lawn",)

    # The proposal arrives from the worker and is drawn: sky on top, grass below.
    def proposed() -> bool:
        bundle = window.workspace.current
        return (
            bundle is not None
            and bundle.proposal is not None
            and bundle.proposal[5, 5] == ids["sky"]
        )

    qtbot.waitUntil(proposed, timeout=TIMEOUT)
    proposal = window.workspace.current.proposal
    assert proposal[90, 120] == ids["grass"]
    assert "ms" in window.latency_label.text()
    window.grab().save(str(shots / "1_proposal.png"))

    # Accept just the sky region.
    doc = window.workspace.current.document
    window.set_tool("accept")
    click(qtbot, window, 10.5, 10.5)
    sky = proposal == ids["sky"]
    assert sky[:30].all() and not sky[50:].any()
    assert np.array_equal(doc.labels == ids["sky"], sky)
    assert (doc.labels[~sky] == doc.unlabeled).all()

    # Paint grass with the brush, undo, redo.
    window.classes.select(ids["grass"])
    window.set_tool("brush")
    window.canvas.set_brush_radius(4)
    drag(qtbot, window, [(80.5, 70.5), (100.5, 70.5), (110.5, 80.5)])
    painted = doc.labels.copy()
    assert painted[70, 90] == ids["grass"] and painted[70, 60] == doc.unlabeled
    window.undo()
    assert (doc.labels[~sky] == doc.unlabeled).all()
    window.redo()
    assert np.array_equal(doc.labels, painted)
    window.grab().save(str(shots / "2_accepted_and_painted.png"))

    # Autosave, then "mark reviewed and go to next".
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)  # one key: mark reviewed and go to next
    qtbot.waitUntil(lambda: window.workspace.current.relpath == "scene_1.png", timeout=TIMEOUT)
    project = window.workspace.project
    qtbot.waitUntil(lambda: project.get_image("scene_0.png").status == "reviewed", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not project.get_class(ids["grass"]).novel, timeout=TIMEOUT)
    assert project.get_class(ids["sky"]).novel is False
    window.close()

    # A new window on the same folder finds the identical labels.
    again = open_window(qtbot, image_folder)
    assert again.workspace.current.relpath == "scene_0.png"
    assert np.array_equal(again.workspace.current.document.labels, painted)
    again.grab().save(str(shots / "3_reopened.png"))

    # Export COCO through the dialog.
    out = tmp_path / "coco"

    def fill_and_accept(dialog: TransferDialog) -> int:
        dialog.format.setCurrentText("coco")
        dialog.path.setText(str(out))
        dialog.grab().save(str(shots / "4_export_dialog.png"))
        return 1

    monkeypatch.setattr(TransferDialog, "exec", fill_and_accept)  # undone after this test
    with qtbot.waitSignal(again.jobs.finished, timeout=TIMEOUT):
        again.export_labels()
    files = list(out.rglob("*.json"))
    assert files, "the COCO export wrote no JSON"
    coco = json.loads(files[0].read_text())
    names = {c["name"] for c in coco["categories"]}
    assert {"sky", "grass"} <= names
    _check_coco_pixels(coco, painted, ids)
    again.close()


def _check_coco_pixels(coco: dict, labels: np.ndarray, ids: dict[str, int]) -> None:
    from pycocotools import mask as mask_utils

    category = {c["id"]: c["name"] for c in coco["categories"]}
    image_id = next(i["id"] for i in coco["images"] if i["file_name"].endswith("scene_0.png"))
    for name in ("sky", "grass"):
        decoded = np.zeros(labels.shape, bool)
        for ann in coco["annotations"]:
            if ann["image_id"] == image_id and category[ann["category_id"]] == name:
                decoded |= mask_utils.decode(ann["segmentation"]).astype(bool)
        assert np.array_equal(decoded, labels == ids[name]), name
