"""Opening another folder (or closing the window) while work on the last one is still under way:
that work is dropped quietly, and nothing from the old folder shows up in the new one."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from _gui_helpers import TIMEOUT, open_window
from PIL import Image

from annotator.gui import _engine
from annotator.gui.engine_worker import EngineThread
from annotator.gui.loader import load_bundle
from annotator.project import Project


def test_folder_closed_while_the_model_loads_reports_nothing(
    qtbot, image_folder: Path, planted, monkeypatch
) -> None:
    release = threading.Event()
    planted_factory = _engine.create_app_segmenter

    def slow_factory(config: object) -> object:
        release.wait(10)  # the model is still loading when the folder closes
        return planted_factory(config)

    monkeypatch.setattr(_engine, "create_app_segmenter", slow_factory)
    project = Project.open(image_folder)
    sky = project.add_class("sky")
    labels = np.full((96, 128), sky.id, np.uint8)
    project.save_labels("scene_0.png", labels)  # a labelled image the class memory would learn
    engine = EngineThread()
    failures: list[str] = []
    engine.worker.failed.connect(lambda _id, message, _details: failures.append(message))
    try:
        with qtbot.waitSignal(engine.worker.state_changed, timeout=TIMEOUT) as state:
            engine.worker.configure(object(), project)
            project.close()  # another folder was opened, or the window closed
            release.set()
        assert state.args[0].available  # the model itself loaded fine
        qtbot.wait(200)
        assert failures == []
    finally:
        release.set()
        engine.stop()


def test_an_image_read_from_the_last_folder_never_shows_in_the_new_one(
    qtbot, image_folder: Path, planted, tmp_path: Path
) -> None:
    window = open_window(qtbot, image_folder)
    ws = window.workspace
    stale = load_bundle(ws.project, "scene_1.png")  # read just before the folder changes
    other = tmp_path / "other"
    other.mkdir()
    mine = np.full((96, 128, 3), 7, np.uint8)  # same names, other pictures
    for name in ("scene_0.png", "scene_1.png"):
        Image.fromarray(mine).save(other / name)
    window.open_folder(other)
    qtbot.waitUntil(lambda: ws.current is not None and ws.project.root == other, timeout=TIMEOUT)
    ws.open_image("scene_1.png")
    ws.loader.loaded.emit(stale)  # the old folder's read arrives late, as a queued signal would
    qtbot.waitUntil(lambda: ws.current.relpath == "scene_1.png", timeout=TIMEOUT)
    qtbot.wait(100)
    assert np.array_equal(ws.current.image, mine)
    assert np.array_equal(ws.loader.cached("scene_1.png").image, mine)
    assert not np.array_equal(stale.image, mine)  # the test would notice a mix-up
    window.close()


def test_a_proposal_asked_for_in_the_last_folder_is_not_shown_in_the_new_one(
    qtbot, image_folder: Path, planted, tmp_path: Path
) -> None:
    from annotator.gui.engine_worker import ProposalResult

    window = open_window(qtbot, image_folder)
    ws = window.workspace
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(np.full((96, 128, 3), 7, np.uint8)).save(other / "scene_0.png")
    window.open_folder(other)
    qtbot.waitUntil(lambda: ws.current is not None and ws.project.root == other, timeout=TIMEOUT)
    old = ProposalResult(
        ws._first_id - 1, "scene_0.png", ws.query(), np.zeros((96, 128), np.uint8), 0.9, 0.1,
        False, 0.0,
    )  # fmt: skip
    ws.engine.worker.proposal_ready.emit(old)
    qtbot.wait(100)
    assert ws.current.proposal is None or not np.array_equal(ws.current.proposal, old.label_map)
    window.close()
