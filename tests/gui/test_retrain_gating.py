"""Retrain trains on what ``annotator train`` trains on (edited and reviewed images with labels),
and the Retrain panel says why the button is off and, when on, what it will train on."""

from __future__ import annotations

from pathlib import Path

from _gui_helpers import TIMEOUT, add_class, drag, open_window
from PySide6.QtWidgets import QDockWidget

from annotator.gui.training_panel import NEEDS_LABELS
from training import TrainConfig
from training.dataset import split_project


def test_painting_one_image_turns_retrain_on_and_says_what_it_trains_on(
    qtbot, image_folder: Path, planted, shots: Path
) -> None:
    window = open_window(qtbot, image_folder)
    panel, ws = window.training, window.workspace
    window.findChild(QDockWidget, "Retrain").raise_()
    qtbot.waitUntil(panel.reason.isVisible, timeout=TIMEOUT)
    assert not panel.retrain_button.isEnabled()
    assert panel.reason.text() == NEEDS_LABELS == panel.retrain_button.toolTip()
    panel.grab().save(str(shots / "retrain_needs_labels.png"))

    add_class(window, "road")
    drag(qtbot, window, [(20.5, 60.5), (60.5, 60.5), (100.5, 60.5)])  # a brush stroke
    # Autosave marks the image edited (not reviewed): that is enough, as for the CLI.
    qtbot.waitUntil(panel.retrain_button.isEnabled, timeout=TIMEOUT)
    assert not panel.reason.isVisible()
    assert [r.status for r in ws.records() if r.relpath == ws.current.relpath] == ["edited"]
    assert panel.retrain_button.toolTip() == (
        "Train on the 1 labelled image (0 reviewed, 1 edited); proposals then use the new version"
    )
    split = split_project(ws.project, TrainConfig())  # what the job (and the CLI) trains on
    assert split.train == (ws.current.relpath,)
    window.close()


def test_the_progress_bar_shows_only_while_retraining(qtbot) -> None:
    from annotator.gui.training_panel import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.progress.isVisible()
    panel.set_running(True)
    assert panel.progress.isVisible() and not panel.reason.isVisible()
    panel.set_running(False)
    assert not panel.progress.isVisible() and panel.reason.text() == "Open a folder first."


def test_the_loss_curve_shows_the_fit_not_the_generative_step(qtbot) -> None:
    from annotator.gui.training_panel import TrainingPanel
    from annotator.progress import Progress

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    for step, loss in ((10, 0.9), (20, 0.5), (30, 0.2)):
        panel.on_progress(Progress(step, 30, "fit", {"phase": "fit", "round": 1, "step": step,
                                                    "loss": loss}))  # fmt: skip
    for step in (0, 60):
        data = {"phase": "generative", "round": 1, "step": step, "loss": 1.2}
        panel.on_progress(Progress(step, 300, f"generative step {step}/300, loss 1.2", data))
    assert panel.loss_points == [0.9, 0.5, 0.2] and panel._loss_x == [10, 20, 30]
    assert panel.status.text() == "round 1: generative step 60/300, loss 1.2"


def test_the_active_version_is_bold_and_its_line_fits_the_panel(
    qtbot, tmp_path: Path, shots: Path
) -> None:
    import training
    from annotator.gui.training_panel import TrainingPanel
    from training.testing import build_textured_project

    project = build_textured_project(tmp_path / "scenes", count=4, reviewed=3, size=48)
    config = training.TrainConfig(rounds=1, steps=10, samples_per_class=100, batch_size=128)
    for _ in training.train(project, None, config):
        pass
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(300, 760)
    panel.show()
    panel.set_project(project)
    training.rollback(project)  # back to zero-shot: its long line carries "(active)"
    panel.refresh()
    qtbot.waitUntil(lambda: panel.versions.count() == 2, timeout=10_000)
    zero_shot = panel.versions.item(1)
    assert zero_shot.text().endswith("(active)") and zero_shot.font().bold()
    assert not panel.versions.item(0).font().bold()
    viewport = panel.versions.viewport().width()
    assert panel.versions.visualItemRect(zero_shot).right() <= viewport
    assert not panel.versions.horizontalScrollBar().isVisible()
    panel.grab().save(str(shots / "retrain_versions_zero_shot_active.png"))
    project.close()


def test_model_menu_retrain_shows_the_panel_and_says_why_not_or_starts(
    qtbot, image_folder: Path, planted
) -> None:
    window = open_window(qtbot, image_folder)
    ws, panel = window.workspace, window.training
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
    assert "Retrain on my labels" in [a.text() for a in menu.actions()]
    window.actions["retrain"].trigger()
    shown = "Retrain needs labels: paint on an image or accept a proposal (A)."
    assert window.statusBar().currentMessage() == shown and NEEDS_LABELS.startswith(shown)
    assert panel.reason.text() == NEEDS_LABELS  # the panel says all of it
    qtbot.waitUntil(lambda: not panel.visibleRegion().isEmpty(), timeout=TIMEOUT)
    assert ws.batch_kind is None
    add_class(window, "road")
    drag(qtbot, window, [(20.5, 60.5), (100.5, 60.5)])
    qtbot.waitUntil(panel.retrain_button.isEnabled, timeout=TIMEOUT)
    panel.config = TrainConfig(rounds=1, steps=5, samples_per_class=50, batch_size=64,
                               use_clip_features=False)  # fmt: skip
    window.actions["retrain"].trigger()
    assert ws.batch_kind == "train" and panel.status.text() == "Retraining…"
    qtbot.waitUntil(lambda: ws.batch_kind is None, timeout=60_000)
    window.close()
