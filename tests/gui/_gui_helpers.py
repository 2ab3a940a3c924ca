"""Helpers shared by the GUI flow tests: open a window, click and drag in image coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt

from annotator.gui.app import create_window

TIMEOUT = 20000

PALETTE = {"grass": (30, 160, 40), "sky": (60, 120, 230), "road": (120, 120, 120)}


def make_scene(height: int = 96, width: int = 128, split: int = 40) -> np.ndarray:
    """Sky on top (rows < split), grass below, with a road square in the grass (HxWx3 uint8)."""
    image = np.empty((height, width, 3), np.uint8)
    image[:split] = PALETTE["sky"]
    image[split:] = PALETTE["grass"]
    image[split + 16 : split + 48, 16:64] = PALETTE["road"]
    return image


def _point(window, x: float, y: float):
    return window.canvas.mapFromScene(QPointF(x, y))


def click(qtbot, window, x: float, y: float, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(
        window.canvas.viewport(), Qt.MouseButton.LeftButton, modifier, _point(window, x, y)
    )


def drag(qtbot, window, points: list[tuple[float, float]]) -> None:
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_point(window, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(viewport, _point(window, *p))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_point(window, *points[-1]))


def open_window(qtbot, folder: Path):
    window = create_window(folder)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.workspace.state.available, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.workspace.current is not None, timeout=TIMEOUT)
    return window


def class_ids(window) -> dict[str, int]:
    return {c.name: c.id for c in window.workspace.classes()}


def add_class(window, text: str) -> None:
    window.classes.entry.setText(text)
    window.classes.entry.returnPressed.emit()
