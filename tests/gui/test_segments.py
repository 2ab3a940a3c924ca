"""ZegFormer segments in the app: outlines, top-3 names on hover, accept and rename whole segments."""

from __future__ import annotations

from pathlib import Path

import pytest
from _gui_helpers import PALETTE, TIMEOUT, _point, add_class, class_ids, click, open_window

from annotator.gui._settings import AppSettings, save_settings


@pytest.fixture
def zegformer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's settings choose the zegformer proposer; the planted segmenter honours them."""
    from annotator.engine.testing import create_planted_segmenter
    from annotator.gui import _engine

    def factory(config):  # noqa: ANN001, ANN202 - the app's engine seam
        return create_planted_segmenter(
            PALETTE, device="cpu", short_side=64, proposer=config.proposer,
            segments=config.segments,
        )  # fmt: skip

    monkeypatch.setattr(_engine, "create_app_segmenter", factory)
    save_settings(AppSettings(proposer="zegformer", segments=6))


def test_hover_accept_and_rename_whole_segments(
    qtbot, image_folder: Path, zegformer, shots: Path
) -> None:
    window = open_window(qtbot, image_folder)
    for name in ("sky", "grass", "road"):
        add_class(window, name)
    ids = class_ids(window)
    layer = window.canvas.segment_layer
    qtbot.waitUntil(
        lambda: layer.segments is not None and layer.segments.count >= 3, timeout=TIMEOUT
    )
    segments = layer.segments
    assert segments.index_map.shape == (96, 128)

    # Hovering the sky shows its three best names, best first, with scores.
    viewport = window.canvas.viewport()
    qtbot.mouseMove(viewport, _point(window, 60.5, 10.5))
    qtbot.waitUntil(lambda: layer.label_text.startswith("sky "), timeout=TIMEOUT)
    assert layer.label_text.count("·") == 2
    window.grab().save(str(shots / "segments_hover.png"))

    # The accept tool takes the whole grass segment under the click, nothing else.
    doc = window.workspace.current.document
    window.set_tool("accept")
    click(qtbot, window, 100.5, 80.5)
    grass = segments.mask(segments.segment_at(80, 100))
    assert (doc.labels[grass] == ids["grass"]).all()
    assert (doc.labels[~grass] == doc.unlabeled).all()

    # Renaming the road segment as "sky" from its menu relabels all of it in one step.
    road = segments.mask(segments.segment_at(72, 40))
    menu = layer.menu(40, 72)
    actions = [a for a in menu.actions() if a.text()]
    assert actions[0].text().startswith("road")  # its best name comes first
    next(a for a in actions if a.text().startswith("sky")).trigger()
    assert (doc.labels[road] == ids["sky"]).all()
    window.undo()
    assert (doc.labels[road] == doc.unlabeled).all()
    window.grab().save(str(shots / "segments_accepted.png"))
    window.close()


def test_dense_proposer_shows_no_segments(qtbot, image_folder: Path, planted) -> None:
    window = open_window(qtbot, image_folder)
    add_class(window, "sky")
    qtbot.waitUntil(lambda: window.workspace.current.proposal is not None, timeout=TIMEOUT)
    assert window.canvas.segment_layer.segments is None
    assert window.canvas.segment_layer.menu(10, 10) is None
    window.close()


def test_settings_dialog_chooses_the_proposer(
    qtbot, image_folder: Path, planted, shots: Path
) -> None:
    from annotator.gui._settings import load_settings
    from annotator.gui.dialogs import SettingsDialog

    window = open_window(qtbot, image_folder)
    dialog = SettingsDialog(window.settings, ["naclip"], window)
    dialog.proposer.setCurrentText("zegformer")
    dialog.segments.setValue(12)
    dialog.segment_score.setCurrentText("crop")
    dialog.grab().save(str(shots / "settings_proposer.png"))
    save_settings(dialog.result_settings())
    saved = load_settings()
    assert (saved.proposer, saved.segments, saved.segment_score) == ("zegformer", 12, "crop")
    from annotator.gui._settings import engine_config

    config = engine_config(saved)
    assert (config.proposer, config.segments, config.segment_score) == ("zegformer", 12, "crop")
    window.close()
