"""The retraining panel: retrain, loss curve, before/after table, versions, rollback, cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import TrainConfig, active_version, list_versions
from training.testing import build_textured_project

pytest.importorskip("pyqtgraph")

FAST = TrainConfig(rounds=1, steps=40, samples_per_class=400, batch_size=512)


@pytest.fixture
def project(tmp_path: Path):
    project = build_textured_project(tmp_path / "scenes", count=6, reviewed=5, size=64)
    yield project
    project.close()


@pytest.fixture
def panel(qtbot, project):
    from annotator.gui.training_panel import TrainingPanel

    widget = TrainingPanel()
    qtbot.addWidget(widget)
    widget.config = FAST
    widget.set_project(project)
    return widget


def _retrain(qtbot, panel) -> str:
    with qtbot.waitSignal(panel.version_changed, timeout=120_000) as changed:
        panel.start(None)
    qtbot.waitUntil(lambda: panel.worker is None, timeout=10_000)
    return changed.args[0]


def test_retrain_shows_loss_curve_metrics_and_new_version(qtbot, panel, project) -> None:
    assert panel.retrain_button.isEnabled() and not panel.cancel_button.isEnabled()
    version_id = _retrain(qtbot, panel)
    assert version_id == "v0001" == active_version(project).id
    assert len(panel.loss_points) >= 10 and panel.loss_points[-1] < panel.loss_points[0]
    rows = {panel.table.item(r, 0).text(): r for r in range(panel.table.rowCount())}
    before = float(panel.table.item(rows["mIoU"], 1).text())
    after = float(panel.table.item(rows["mIoU"], 2).text())
    assert after > before + 30  # percent
    assert panel.versions.count() == 2 and "(active)" in panel.versions.item(0).text()
    assert panel.versions.item(1).text().startswith("zero-shot only  mIoU")
    assert panel.retrain_button.isEnabled() and panel.rollback_button.isEnabled()


def test_a_worse_version_stays_inactive_until_the_user_switches(qtbot, panel, project) -> None:
    _retrain(qtbot, panel)
    panel.config = TrainConfig(rounds=1, steps=3, seed=3, samples_per_class=400, batch_size=512)
    panel.start(None)  # 3 steps: far worse than v0001 on the held-out images
    qtbot.waitUntil(lambda: panel.worker is None, timeout=120_000)
    assert "v0002 scores lower" in panel.status.text()
    assert "v0001 stays active" in panel.status.text() and active_version(project).id == "v0001"
    texts = [panel.versions.item(r).text() for r in range(panel.versions.count())]
    assert texts[0].startswith("v0002") and "(active)" not in texts[0]
    assert texts[1].startswith("v0001") and texts[1].endswith("(active)")
    panel.versions.setCurrentRow(0)  # newest first: v0002
    with qtbot.waitSignal(panel.version_changed) as changed:
        panel.use_button.click()
    assert changed.args == ["v0002"] and active_version(project).id == "v0002"
    with qtbot.waitSignal(panel.version_changed) as changed:
        panel.rollback_button.click()
    assert changed.args == ["v0001"] and active_version(project).id == "v0001"
    panel.versions.setCurrentRow(2)  # "zero-shot only"
    with qtbot.waitSignal(panel.version_changed) as changed:
        panel.use_button.click()
    assert changed.args == [None] and active_version(project) is None
    assert panel.versions.item(2).text().endswith("(active)")
    assert "Proposals now use zero-shot only" in panel.status.text()


def test_cancel_keeps_the_previous_version(qtbot, panel, project) -> None:
    _retrain(qtbot, panel)
    panel.config = TrainConfig(rounds=1, steps=100_000, samples_per_class=400, batch_size=512)
    panel.start(None)
    qtbot.waitUntil(lambda: len(panel.loss_points) > 0, timeout=60_000)
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.worker is None, timeout=60_000)
    assert (
        "cancelled" in panel.status.text()
        and "previous version stays active" in panel.status.text()
    )
    assert [v.id for v in list_versions(project)] == ["v0001"]
    assert active_version(project).id == "v0001"


def test_retrain_is_disabled_without_reviewed_images(qtbot, tmp_path: Path) -> None:
    from annotator.gui.training_panel import TrainingPanel

    fresh = build_textured_project(tmp_path / "fresh", count=2, reviewed=0, size=32)
    widget = TrainingPanel()
    qtbot.addWidget(widget)
    widget.set_project(fresh)
    assert not widget.retrain_button.isEnabled() and not widget.rollback_button.isEnabled()
    fresh.close()
