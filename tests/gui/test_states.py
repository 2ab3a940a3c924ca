"""What users see when things go wrong, and the smaller flows: banner, bad files, class edits,
tools, propose-all, help."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _gui_helpers import TIMEOUT, add_class, class_ids, click, open_window
from PySide6.QtCore import Qt

from annotator.gui.app import create_demo_copy, create_window, sample_folder


def test_missing_weights_shows_banner_and_manual_labelling_works(
    qtbot, image_folder: Path, shots: Path
) -> None:
    # No planted segmenter: the real engine with ViT-B-16/openai and no network -> no weights.
    window = create_window(image_folder)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=TIMEOUT)
    assert "no zero-shot model weights" in window.banner.text.text()
    assert not window.actions["propose_all"].isEnabled()
    qtbot.waitUntil(lambda: window.workspace.current is not None, timeout=TIMEOUT)
    add_class(window, "sky")
    window.set_tool("polygon")
    for x, y in ((10.5, 10.5), (50.5, 10.5), (50.5, 30.5)):
        click(qtbot, window, x, y)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    labels = window.workspace.current.document.labels
    assert labels[12, 45] == class_ids(window)["sky"] and labels[28, 12] == 255
    window.grab().save(str(shots / "5_no_weights_banner.png"))
    window.banner.skip.click()
    assert not window.banner.isVisible() and window.settings.use_model is False
    window.close()


def test_unreadable_image_is_marked_and_app_stays(
    qtbot, image_folder: Path, planted, shots: Path
) -> None:
    (image_folder / "broken.png").write_bytes(b"not a png at all")
    window = open_window(qtbot, image_folder)
    window.workspace.open_image("broken.png")
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=TIMEOUT)
    assert "broken.png" in window.notice.text.text()
    qtbot.waitUntil(lambda: "unreadable" in window.images.counts.text(), timeout=TIMEOUT)
    row = window.images.order().index("broken.png")
    text = window.images.model.index(row).data()
    assert text.startswith("⚠") and "unreadable" in text
    window.grab().save(str(shots / "6_unreadable.png"))
    window.workspace.open_image("scene_1.png")
    qtbot.waitUntil(lambda: window.workspace.current.relpath == "scene_1.png", timeout=TIMEOUT)
    window.close()


def test_renaming_a_class_requeries_cached_features(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    add_class(window, "tree")  # not in the planted palette: nothing should be "tree"
    ids = class_ids(window)
    qtbot.waitUntil(lambda: window.workspace.current.proposal is not None, timeout=TIMEOUT)
    segmenter = planted[-1]
    # The shown image and the two prefetched next ones are encoded once each.
    qtbot.waitUntil(lambda: segmenter.encode_count == 3, timeout=TIMEOUT)
    before = window.workspace.current.proposal
    encodings = segmenter.encode_count
    window.classes.select(ids["tree"])
    window._rename_class(ids["tree"], "grass", ())

    def grass_proposed() -> bool:
        proposal = window.workspace.current.proposal
        return (
            proposal is not None
            and proposal is not before
            and proposal[90, 120] == ids["tree"]
            and proposal[5, 5] == ids["sky"]
        )

    qtbot.waitUntil(grass_proposed, timeout=TIMEOUT)
    assert segmenter.encode_count == encodings  # only the text changed: no image re-encoding
    assert window.workspace.classes()[1].name == "grass"
    window.close()


def test_fill_reassign_pick_and_accept_all(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    add_class(window, "grass")
    add_class(window, "road")
    ids = class_ids(window)
    doc = window.workspace.current.document
    window.classes.select(ids["road"])
    window.set_tool("fill")
    click(qtbot, window, 30.5, 70.5)  # the grey square, by colour
    assert (doc.labels[56:88, 16:64] == ids["road"]).all() and doc.labels[50, 20] == 255
    window.classes.select(ids["sky"])
    window.set_tool("reassign")
    click(qtbot, window, 30.5, 70.5)
    assert (doc.labels[56:88, 16:64] == ids["sky"]).all()
    window.set_tool("pick")
    window.classes.select(ids["grass"])
    click(qtbot, window, 30.5, 70.5)
    assert window.classes.current_id == ids["sky"]
    qtbot.waitUntil(lambda: window.workspace.current.proposal is not None, timeout=TIMEOUT)
    qtbot.waitUntil(
        lambda: window.workspace.current.proposal[90, 120] == ids["grass"], timeout=TIMEOUT
    )
    assert window.workspace.accept_proposal()
    assert doc.labels[90, 120] == ids["grass"] and (doc.labels[56:88, 16:64] == ids["sky"]).all()
    assert not (doc.labels == doc.unlabeled).any()
    window.close()


def test_propose_all_fills_the_review_queue(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    add_class(window, "grass")
    with qtbot.waitSignal(window.workspace.batch_finished, timeout=TIMEOUT):
        window.propose_all()
    project = window.workspace.project
    assert {r.status for r in project.list_images()} == {"proposed"}
    queue = [r.mean_confidence for r in project.review_queue()]
    assert len(queue) == 3 and queue == sorted(queue)
    window.images.filter.setCurrentIndex(5)  # the review queue
    assert window.images.order() == [r.relpath for r in project.review_queue()]
    window.close()


def test_help_lists_every_tool_and_class_shortcut(
    qtbot, image_folder: Path, planted, shots: Path
) -> None:
    window = open_window(qtbot, image_folder)
    rows = dict((text, key) for key, text in window.shortcut_rows())
    for tool in window.canvas.tools.values():
        assert rows[tool.title] == tool.shortcut
    assert (
        rows["Select class 1"] == "1" and "Undo" in rows and "Mark reviewed and go to next" in rows
    )
    window.show_shortcuts()
    window.close()


def test_demo_copies_the_sample_into_a_writable_folder(tmp_path: Path) -> None:
    copy = create_demo_copy(tmp_path)
    images = sorted(p.name for p in copy.iterdir())
    assert images == sorted(p.name for p in sample_folder().glob("*.jpg"))
    assert len(images) >= 3 and copy.is_relative_to(tmp_path)


def test_brush_size_and_zoom_keys(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    radius = window.canvas.brush_radius
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_radius > radius
    window.canvas.one_to_one()
    assert abs(window.canvas.zoom - 1.0) < 1e-6
    window.canvas.fit()
    assert window.canvas.zoom > 1.0  # a 128 x 96 image is enlarged to fit
    assert np.isfinite(window.canvas.zoom)
    window.close()


def test_settings_dialog_persists_choices(qtbot, image_folder: Path, planted) -> None:
    from annotator.gui._settings import load_settings
    from annotator.gui.dialogs import SettingsDialog

    window = open_window(qtbot, image_folder)
    dialog = SettingsDialog(window.settings, ["naclip", "sclip"], window)
    dialog.device.setCurrentText("cpu")
    dialog.threads.setValue(3)
    dialog.head.setCurrentText("sclip")
    dialog.accept = lambda: None  # noqa: E731 - keep the dialog from closing in the test
    from annotator.gui._settings import save_settings

    save_settings(dialog.result_settings())
    saved = load_settings()
    assert (saved.device, saved.threads, saved.head) == ("cpu", 3, "sclip")
    window.close()


def test_hiding_a_class_and_outline_mode(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    ids = class_ids(window)
    item = window.classes.list.item(0)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert window.classes.hidden_ids() == {ids["sky"]}
    assert window.canvas._hidden == {ids["sky"]}
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    assert window.canvas.outline_only
    window.close()


def test_merge_and_delete_classes_after_confirmation(
    qtbot, image_folder: Path, planted, monkeypatch
) -> None:
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    window = open_window(qtbot, image_folder)
    for name in ("sky", "heaven", "grass"):
        add_class(window, name)
    ids = class_ids(window)
    doc = window.workspace.current.document
    window.set_tool("fill")
    for name, y in (("sky", 5.5), ("heaven", 20.5), ("grass", 90.5)):
        window.classes.select(ids[name])
        doc.apply(name, *_rows(doc, y), ids[name])
    window.workspace.edited()
    window.workspace.save_now()
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("sky", True))
    window.classes.select(ids["heaven"])
    window.classes.merge_button.click()  # answered No: nothing changes
    assert "heaven" in class_ids(window)
    window.classes.merge_button.click()  # answered Yes
    assert set(class_ids(window)) == {"sky", "grass"}
    qtbot.waitUntil(
        lambda: window.workspace.current.document.labels[20, 5] == ids["sky"], timeout=TIMEOUT
    )
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.classes.select(ids["grass"])
    window.classes.delete_button.click()
    assert set(class_ids(window)) == {"sky"}
    labels = window.workspace.current.document.labels
    assert labels[90, 5] == 255 and labels[5, 5] == ids["sky"]
    window.close()


def _rows(doc, y: float):
    from annotator.gui._labelops import Rect

    row = int(y)
    width = doc.shape[1]
    return Rect(0, row, width, row + 1), np.ones((1, width), bool)


def test_import_masks_through_the_dialog(
    qtbot, image_folder: Path, planted, tmp_path: Path, monkeypatch
) -> None:
    from PIL import Image

    from annotator.gui.dialogs import TransferDialog

    masks = tmp_path / "masks"
    masks.mkdir()
    mask = np.full((96, 128), 255, np.uint8)
    mask[:10] = 0
    mask[80:] = 1
    Image.fromarray(mask).save(masks / "scene_2.png")
    window = open_window(qtbot, image_folder)

    def fill_and_accept(dialog: TransferDialog) -> int:
        dialog.format.setCurrentText("masks")
        dialog.path.setText(str(masks))
        dialog.class_names.setText("sky, grass")
        return 1

    monkeypatch.setattr(TransferDialog, "exec", fill_and_accept)
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT):
        window.import_labels()
    ids = class_ids(window)
    assert set(ids) == {"sky", "grass"}
    window.workspace.open_image("scene_2.png")
    ws = window.workspace
    qtbot.waitUntil(
        lambda: ws.current is not None and ws.current.relpath == "scene_2.png", timeout=TIMEOUT
    )
    labels = window.workspace.current.document.labels
    assert labels[5, 5] == ids["sky"] and labels[90, 5] == ids["grass"] and labels[50, 5] == 255
    window.close()


def _window_proposing_in_bands(qtbot, image_folder: Path, monkeypatch):  # noqa: ANN001, ANN202
    """A window with sky and grass proposed, where accepting the proposal runs in bands."""
    from annotator.gui import workspace as workspace_module

    monkeypatch.setattr(workspace_module, "ACCEPT_SYNC_PIXELS", 1000)  # treat 128 x 96 as large
    monkeypatch.setattr(workspace_module, "ACCEPT_BAND_ROWS", 8)
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    add_class(window, "grass")
    ws = window.workspace
    qtbot.waitUntil(
        lambda: ws.current.proposal is not None and ws.current.proposal[90, 120] != 255,
        timeout=TIMEOUT,
    )
    return window


def test_large_accept_runs_in_bands_without_blocking(
    qtbot, image_folder: Path, planted, monkeypatch
) -> None:
    window = _window_proposing_in_bands(qtbot, image_folder, monkeypatch)
    ws = window.workspace
    doc = ws.current.document
    assert ws.accept_proposal()
    assert doc.busy and (doc.labels[90:] == doc.unlabeled).all()  # not done yet: bands follow
    window.set_tool("brush")
    window.classes.select(class_ids(window)["sky"])
    click(qtbot, window, 5.5, 90.5)  # refused while accepting (sky here would differ)
    qtbot.waitUntil(lambda: not doc.busy, timeout=TIMEOUT)
    assert np.array_equal(doc.labels, ws.current.proposal)
    assert doc.undo_name == "Accept proposal"
    window.undo()
    assert (doc.labels == doc.unlabeled).all()  # one step undoes every band
    window.close()


def test_closing_during_a_banded_accept_saves_it_complete(
    qtbot, image_folder: Path, planted, monkeypatch
) -> None:
    from annotator.project import Project

    window = _window_proposing_in_bands(qtbot, image_folder, monkeypatch)
    ws = window.workspace
    proposal, relpath = ws.current.proposal.copy(), ws.current.relpath
    assert ws.accept_proposal() and ws.current.document.busy
    window.close()
    with Project.open(image_folder, read_only=True) as project:
        assert np.array_equal(project.load_labels(relpath), proposal)
