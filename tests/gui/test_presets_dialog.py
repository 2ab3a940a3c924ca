"""Settings: the user picks a published protocol; it reaches the engine's configuration."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt

from annotator.gui._settings import AppSettings, engine_config, load_settings, save_settings
from annotator.gui.dialogs import PRESET_HEAD, SettingsDialog


def test_user_picks_a_preset_and_the_engine_gets_it(qtbot, tmp_path: Path) -> None:
    dialog = SettingsDialog(AppSettings(head="sclip"), ["naclip", "sclip", "clearclip"])
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.preset.currentData() == "naclip-stuff"  # the default protocol
    dialog.preset.setFocus()
    while dialog.preset.currentData() != "clearclip":  # the user steps through the list
        qtbot.keyClick(dialog.preset, Qt.Key.Key_Down)
    assert dialog.head.currentText() == PRESET_HEAD  # a new protocol brings its own head
    if os.environ.get("ANNOTATOR_SCREENSHOTS"):
        dialog.grab().save(str(Path(os.environ["ANNOTATOR_SCREENSHOTS"]) / "settings.png"))
    save_settings(dialog.result_settings())
    saved = load_settings()
    assert (saved.preset, saved.head) == ("clearclip", "")
    config = engine_config(saved)
    assert (config.head, config.window, config.stride, config.logit_scale) == (
        "clearclip", 448, 224, 50.0)  # fmt: skip


def test_a_chosen_head_overrides_the_preset(qtbot) -> None:
    dialog = SettingsDialog(AppSettings(), ["naclip", "sclip"])
    qtbot.addWidget(dialog)
    dialog.head.setCurrentText("sclip")
    settings = dialog.result_settings()
    config = engine_config(settings)
    assert (config.preset, config.head, config.refine) == ("naclip-stuff", "sclip", "pamr")


def test_pretrained_field_says_none_means_random_weights(qtbot) -> None:  # noqa: ANN001
    dialog = SettingsDialog(AppSettings(pretrained=""), ["naclip"])
    qtbot.addWidget(dialog)
    assert "none for random weights" in dialog.pretrained.placeholderText()
    assert "masks are meaningless" in dialog.pretrained.toolTip()
    qtbot.keyClicks(dialog.pretrained, "none")
    assert dialog.result_settings().pretrained == "none"
