"""The class memory in the app: labels saved on one image fix the next image's proposals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _gui_helpers import TIMEOUT, add_class, class_ids, drag, open_window
from PySide6.QtCore import Qt

from tests.unit.engine.memory_world import COLOURS, create_confused_segmenter

# Rows, cols of the cat (red) in every scene and of the dog (blue) in each, on the 8-pixel patch
# grid of the planted encoder (regions cut through patches blur, for any text).
CAT = (slice(16, 40), slice(8, 32))
DOGS = [(slice(8, 40), slice(40, 64)), (slice(32, 56), slice(40, 64))]


def _core(box: tuple[slice, slice], margin: int = 4) -> tuple[slice, slice]:
    """The box without a margin: patch scores are upsampled bilinearly, so edges are soft."""
    return tuple(slice(s.start + margin, s.stop - margin) for s in box)


def _scene(dog: tuple[slice, slice]) -> np.ndarray:
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = COLOURS["grass"]
    image[CAT] = COLOURS["cat"]
    image[dog] = COLOURS["dog"]
    return image


@pytest.fixture
def confused_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from PIL import Image

    from annotator.gui import _engine

    folder = tmp_path / "pets"
    folder.mkdir()
    for index, dog in enumerate(DOGS):
        Image.fromarray(_scene(dog)).save(folder / f"scene_{index}.png")
    monkeypatch.setattr(_engine, "create_app_segmenter", lambda config: create_confused_segmenter())
    return folder


def _proposal_at(window, relpath: str, rows: slice, cols: slice) -> np.ndarray | None:
    bundle = window.workspace.current
    if bundle is None or bundle.relpath != relpath or bundle.proposal is None:
        return None
    return bundle.proposal[rows, cols]


def test_saved_labels_teach_the_next_proposal(qtbot, confused_folder: Path, shots: Path) -> None:
    window = open_window(qtbot, confused_folder)
    for name in ("grass", "cat", "dog"):
        add_class(window, name)
    ids = class_ids(window)
    # Zero-shot, the word "cat" points at the dog's (blue) pixels: the red cat becomes grass.
    qtbot.waitUntil(
        lambda: (
            (p := _proposal_at(window, "scene_0.png", *CAT)) is not None
            and (p == ids["grass"]).mean() > 0.9
        ),
        timeout=TIMEOUT,
    )
    # The user paints the cat and moves on with N (mark reviewed, next image).
    window.classes.select(ids["cat"])
    window.set_tool("brush")
    window.canvas.set_brush_radius(5)
    drag(qtbot, window, [(12.5, 20.5), (27.5, 20.5), (27.5, 35.5), (12.5, 35.5)])
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: window.workspace.memory_counts.get(ids["cat"]) == 1, timeout=TIMEOUT)

    # The next image's proposal already knows what "cat" looks like here; dog keeps its text.
    def learned() -> bool:
        cat = _proposal_at(window, "scene_1.png", *_core(CAT))
        dog = _proposal_at(window, "scene_1.png", *_core(DOGS[1]))
        return (
            cat is not None
            and (cat == ids["cat"]).mean() > 0.8
            and (dog == ids["dog"]).mean() > 0.8
        )

    qtbot.waitUntil(learned, timeout=TIMEOUT)
    panel = window.classes
    texts = [panel.list.item(row).text() for row in range(panel.list.count())]
    assert "memory: 1 image" in texts[1] and "memory" not in texts[0] + texts[2]
    panel.select(ids["cat"])
    assert panel.memory_box.isEnabled() and panel.memory_box.isChecked()
    panel.grab().save(str(shots / "memory_panel.png"))

    # Untick the class memory: the text alone again (cat -> grass), and the panel says so.
    qtbot.mouseClick(panel.memory_box, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            (p := _proposal_at(window, "scene_1.png", *CAT)) is not None
            and (p == ids["grass"]).mean() > 0.9
        ),
        timeout=TIMEOUT,
    )
    assert "memory: 1 image (off)" in panel.list.item(1).text()
    assert window.workspace.memory_disabled() == {ids["cat"]}
    panel.grab().save(str(shots / "memory_panel_off.png"))
    window.close()


def test_labels_saved_while_the_app_was_closed_are_learned_on_open(
    qtbot, confused_folder: Path
) -> None:
    from annotator.project import Project

    with Project.open(confused_folder) as project:
        ids = {name: project.add_class(name).id for name in ("grass", "cat", "dog")}
        labels = np.full((64, 64), 255, np.uint8)
        labels[_core(CAT)] = ids["cat"]
        project.save_labels("scene_1.png", labels)
    window = open_window(qtbot, confused_folder)  # shows scene_0, never labelled
    qtbot.waitUntil(lambda: window.workspace.memory_counts == {ids["cat"]: 1}, timeout=TIMEOUT)
    qtbot.waitUntil(
        lambda: (
            (p := _proposal_at(window, "scene_0.png", *_core(CAT))) is not None
            and (p == ids["cat"]).all()
        ),
        timeout=TIMEOUT,
    )
    assert "memory: 1 image" in window.classes.list.item(1).text()
    window.close()
