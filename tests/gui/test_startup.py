"""The first seconds after opening a folder: the window shows the first image at once, while
torch loads in the background (it used to freeze for 8-15 s: the GUI thread imported torch
through ``open_clip``'s templates, the Retrain panel and the Groups panel)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _gui_helpers import TIMEOUT

from annotator.gui import _imports

# Runs in a fresh interpreter, so that "torch in sys.modules" means something. The engine
# stands in for a model still loading (it never imports torch), and background imports never
# finish: whatever imports torch then did it on the GUI thread.
_OPEN_FOLDER = r"""
import json, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from annotator.gui import _engine, _imports
def still_loading(config):
    raise RuntimeError("the model is still loading")
_engine.create_app_segmenter = still_loading
_imports._Importer._run = lambda self, name: None
from annotator.gui.app import create_window
window = create_window(sys.argv[1])
end = time.monotonic() + 60
while window.workspace.current is None and time.monotonic() < end:
    app.processEvents()
    time.sleep(0.01)
print(json.dumps({
    "shown": window.workspace.current is not None,
    "torch": "torch" in sys.modules,
    "open_clip": "open_clip" in sys.modules,
    "groups": window.groups_panel.status.text(),
    "retrain_tip": window.training.retrain_button.toolTip(),
}), flush=True)
window.close()
"""


def test_opening_a_folder_shows_the_image_without_importing_torch_on_the_gui_thread(
    image_folder: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_FOLDER, str(image_folder)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["shown"] and not seen["torch"] and not seen["open_clip"]
    assert seen["groups"] == "Loading…"  # the panel says so until torch is there
    assert "reviewed" in seen["retrain_tip"] or "label" in seen["retrain_tip"]


@pytest.fixture
def slow_import(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend ``training`` is not imported yet: the panels must wait for the background
    import (it finishes quickly here, training being imported already)."""
    pending: list[str] = []
    real = _imports.is_imported

    def is_imported(name: str) -> bool:
        return real(name) and name not in pending

    def run(self, name: str) -> None:
        importlib.import_module(name)
        pending.remove(name)
        self.done.emit(name)

    monkeypatch.setattr(_imports, "is_imported", is_imported)
    monkeypatch.setattr(_imports._Importer, "_run", run)
    pending.extend(["training", "training.grouping"])
    return pending


def test_the_retrain_panel_lists_versions_once_training_is_imported(
    qtbot, tmp_path: Path, slow_import: list[str]
) -> None:
    import training
    from annotator.gui.training_panel import TrainingPanel
    from training.testing import build_textured_project

    project = build_textured_project(tmp_path / "scenes", count=4, reviewed=3, size=48)
    config = training.TrainConfig(rounds=1, steps=10, samples_per_class=100, batch_size=128)
    job = training.train(project, None, config)
    while True:
        try:
            next(job)
        except StopIteration:
            break
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    qtbot.waitUntil(lambda: panel.versions.count() == 2, timeout=TIMEOUT)
    assert panel.versions.item(0).text().startswith("v0001")
    assert "training" not in slow_import  # it went through the background import
    project.close()


def test_the_groups_panel_says_loading_then_what_to_do(
    qtbot, image_folder: Path, slow_import: list[str]
) -> None:
    from annotator.gui.groups_panel import GroupsPanel
    from annotator.project import Project

    project = Project.open(image_folder)
    panel = GroupsPanel()
    qtbot.addWidget(panel)
    panel.set_project(project)
    assert panel.status.text() == "Loading…"
    qtbot.waitUntil(lambda: panel.status.text().startswith("Not grouped yet"), timeout=TIMEOUT)
    project.close()


def test_a_failed_background_import_hands_back_to_the_caller_once(qtbot) -> None:
    from PySide6.QtCore import QObject

    owner = QObject()
    calls: list[bool] = []
    name = "annotator_module_that_does_not_exist"
    assert not _imports.module_ready(name, owner, lambda: calls.append(True))
    qtbot.waitUntil(lambda: calls == [True], timeout=TIMEOUT)
    # Its own import now raises the real error for the user to see: no endless retries.
    assert _imports.module_ready(name, owner, lambda: calls.append(False))


def test_before_any_class_the_engine_encodes_the_shown_image_first(
    qtbot, image_folder: Path, planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first proposal after typing a class must not wait for the next images: with no
    classes the engine only encodes the shown image, and proposes nothing."""
    import hashlib

    import numpy as np
    from _gui_helpers import add_class, open_window

    from annotator.gui import _engine

    calls: list[tuple[str, object]] = []
    plant = _engine.create_app_segmenter

    def spied(config: object) -> object:
        segmenter = plant(config)
        set_image, predict = segmenter.set_image, segmenter.predict

        def encode(image: np.ndarray) -> None:
            calls.append(("encode", hashlib.sha1(image.tobytes()).hexdigest()))
            set_image(image)

        def propose(classes: list[str], **kwargs: object) -> object:
            calls.append(("predict", tuple(classes)))
            return predict(classes, **kwargs)

        segmenter.set_image, segmenter.predict = encode, propose
        return segmenter

    monkeypatch.setattr(_engine, "create_app_segmenter", spied)
    window = open_window(qtbot, image_folder)
    ws = window.workspace
    shown = hashlib.sha1(ws.current.image.tobytes()).hexdigest()
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=TIMEOUT)
    qtbot.wait(1500)  # the prefetch timers have all fired by now
    # No proposal without classes, no other image (repeats of it hit the feature cache).
    assert set(calls) == {("encode", shown)}
    assert [r.status for r in ws.records()] == ["new", "new", "new"]
    add_class(window, "sky")
    qtbot.waitUntil(lambda: ws.current.proposal is not None, timeout=TIMEOUT)
    assert ("predict", ("sky",)) in calls
    window.close()
