"""The Groups dock: strips of each group's images; naming a group proposes it everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.progress import run_job
from annotator.project import Project
from training.grouping import GroupConfig, group_folder, load_group_map, load_grouping

RED, BLUE, GREEN = (200, 40, 40), (40, 60, 210), (40, 190, 60)


def _write(folder: Path, name: str, left: tuple, right: tuple) -> None:
    image = np.empty((40, 48, 3), np.uint8)
    image[:, :24], image[:, 24:] = left, right
    Image.fromarray(image).save(folder / name)


@pytest.fixture
def grouped(tmp_path: Path):
    """Four images: two red|blue, two all green; grouped into 3 groups on raw features."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    _write(folder, "a.png", RED, BLUE)
    _write(folder, "sub/b.png", RED, BLUE)
    _write(folder, "c.png", GREEN, GREEN)
    _write(folder, "sub/d.png", GREEN, GREEN)
    project = Project.open(folder)
    run_job(group_folder(project, None, 3, GroupConfig(k=3, size=48, steps=0)))
    yield project
    project.close()


def _green_group(project) -> int:
    result = load_grouping(project)
    return next(g.id for g in result.groups if "c.png" in g.images)


def test_naming_a_group_proposes_it_on_every_image_with_it_and_no_other(
    qtbot, grouped, monkeypatch, tmp_path
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QInputDialog

    from annotator.gui.groups_panel import GroupsPanel

    panel = GroupsPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 420)
    panel.show()
    panel.set_project(grouped)
    assert panel.groups.count() == 3
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10000)
    assert not panel.groups.item(0).icon().isNull()  # the strip of its images
    green = _green_group(grouped)
    row = next(r for r in range(3) if panel.groups.item(r).data(0x0100) == green)
    assert "2 images" in panel.groups.item(row).text()
    rect = panel.groups.visualItemRect(panel.groups.item(row))
    qtbot.mouseClick(panel.groups.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.name_button.isEnabled() and not panel.merge_button.isEnabled()
    panel.grab().save(str(tmp_path / "groups_panel.png"))
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("meadow", True))
    qtbot.mouseClick(panel.name_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10000)
    assert "Proposals written on 2 images" in panel.status.text(), panel.status.text()
    meadow = grouped.find_class("meadow")
    assert meadow is not None
    for relpath in ("c.png", "sub/d.png"):
        proposal = grouped.load_proposal(relpath)
        expected = load_group_map(grouped, relpath) == green
        assert np.array_equal(proposal == meadow.id, expected) and expected.all()
        assert grouped.load_labels(relpath) is None  # proposals, never human labels
    for relpath in ("a.png", "sub/b.png"):
        assert grouped.load_proposal(relpath) is None


def test_merging_two_selected_groups_leaves_one(qtbot, grouped) -> None:
    from PySide6.QtCore import Qt

    from annotator.gui.groups_panel import GroupsPanel

    panel = GroupsPanel()
    qtbot.addWidget(panel)
    panel.set_project(grouped)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10000)
    panel.groups.item(0).setSelected(True)
    panel.groups.item(1).setSelected(True)
    assert panel.merge_button.isEnabled() and not panel.name_button.isEnabled()
    qtbot.mouseClick(panel.merge_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.groups.count() == 2 and panel.worker is None, timeout=10000)
    assert "2 groups over 4 images" in panel.status.text()


def test_group_folder_from_the_window_runs_in_the_engine_thread(
    qtbot, image_folder, planted, shots
) -> None:
    from _gui_helpers import open_window
    from PySide6.QtWidgets import QDockWidget

    window = open_window(qtbot, image_folder)
    panel = window.groups_panel
    panel.config = GroupConfig(k=3, size=48, steps=3, batch=2, crop=32)
    panel.k_box.setValue(3)
    panel.group_button.click()
    assert window.workspace.batch_kind == "group" and not panel.group_button.isEnabled()
    qtbot.waitUntil(lambda: window.workspace.batch_kind is None, timeout=120_000)
    assert panel.status.text() == "3 groups over 3 images", window.notice.history
    qtbot.waitUntil(lambda: panel.groups.count() == 3 and panel.worker is None, timeout=20_000)
    assert window.workspace.batch_kind is None and panel.group_button.isEnabled()
    result = load_grouping(window.workspace.project)
    assert sorted(result.images) == ["scene_0.png", "scene_1.png", "scene_2.png"]
    # The planted CLIP features rank the vocabulary: each region colour gets its own name.
    assert sorted(g.suggested_names[0] for g in result.groups) == ["grass", "road", "sky"]
    window.findChild(QDockWidget, "Groups").raise_()
    window.grab().save(str(shots / "groups_dock.png"))
    window.close()


def test_closing_the_window_while_the_strips_render_reports_nothing(
    qtbot, grouped, planted, monkeypatch
) -> None:
    """The strips of a stored grouping still render when the user closes the window: that
    worker then fails on the closed project, and its answer must reach no deleted widget
    (it raised "Internal C++ object already deleted" in the event loop on a loaded machine)."""
    import threading

    import shiboken6
    from _gui_helpers import TIMEOUT
    from PySide6.QtCore import QThreadPool

    from annotator.gui import groups_panel
    from annotator.gui.app import create_window

    folder = grouped.root
    grouped.close()  # the window opens the folder itself
    release, ended = threading.Event(), threading.Event()
    render = groups_panel.render_strips

    def slow_render(project, result):
        try:
            release.wait(10)  # still rendering when the window closes
            return render(project, result)
        finally:
            ended.set()

    monkeypatch.setattr(groups_panel, "render_strips", slow_render)
    # Not handed to qtbot (open_window): this window is deleted here, as an app's is on quit.
    window = create_window(folder)
    qtbot.waitUntil(lambda: window.workspace.current is not None, timeout=TIMEOUT)
    panel = window.groups_panel
    qtbot.waitUntil(lambda: panel.worker is not None, timeout=TIMEOUT)  # the strips render
    window.close()
    window.deleteLater()  # the closed window and its panels go
    qtbot.waitUntil(lambda: not shiboken6.isValid(panel), timeout=TIMEOUT)
    release.set()
    assert ended.wait(10)
    assert QThreadPool.globalInstance().waitForDone(10_000)  # (superqt's worker thread)
    qtbot.wait(300)  # the worker's answer arrives; pytest-qt fails the test if it raises
