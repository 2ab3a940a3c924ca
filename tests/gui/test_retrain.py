"""Retraining from the main window: the job runs in the engine thread that owns the model, the
new version is kept (inactive while it scores lower than the active model) and, once the user
picks it, the proposals are asked for again."""

from __future__ import annotations

from pathlib import Path

from _gui_helpers import TIMEOUT, add_class, open_window
from PySide6.QtWidgets import QDockWidget

import training


def test_retrain_from_the_window_activates_a_version(
    qtbot, image_folder: Path, planted, shots: Path
) -> None:
    window = open_window(qtbot, image_folder)
    assert window.training is not None
    for name in ("sky", "grass"):
        add_class(window, name)
    ws = window.workspace
    for _ in range(2):  # label two images by accepting their proposals, then review them
        qtbot.waitUntil(lambda: ws.current.proposal is not None, timeout=TIMEOUT)
        qtbot.waitUntil(lambda: ws.current.proposal[90, 120] != 255, timeout=TIMEOUT)
        assert ws.accept_proposal()
        relpath = ws.current.relpath
        window.mark_reviewed()
        qtbot.waitUntil(lambda r=relpath: ws.current.relpath != r, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: len(ws.project.list_images("reviewed")) == 2, timeout=TIMEOUT)
    window.training.set_project(ws.project)
    window.training.config = training.TrainConfig(
        rounds=1, steps=20, samples_per_class=200, batch_size=256, use_clip_features=False
    )
    window.training.retrain_button.click()
    qtbot.waitUntil(lambda: ws.batch_kind is None and window.training.worker is None,
                    timeout=120_000)  # fmt: skip
    qtbot.waitUntil(lambda: bool(training.list_versions(ws.project)), timeout=TIMEOUT)
    # 20 steps fall short of the planted zero-shot model here: v0001 is kept but not used,
    # and the panel says so and how to switch.
    status = window.training.status.text()
    assert "v0001 scores lower on the held-out images" in status
    assert "zero-shot only stays active" in status
    assert training.active_version(ws.project) is None
    window.training.versions.setCurrentRow(0)  # v0001 (newest first)
    with qtbot.waitSignal(ws.engine.worker.adapter_changed, timeout=TIMEOUT):
        window.training.use_button.click()  # the user switches anyway
    versions = training.list_versions(ws.project)
    assert len(versions) == 1 and versions[0].active
    assert "Proposals now use v0001" in window.training.status.text()
    window.findChild(QDockWidget, "Retrain").raise_()
    window.grab().save(str(shots / "9_retrained.png"))
    window.close()
