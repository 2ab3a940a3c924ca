"""The canvas repaints only what an edit touched, and accepts a dropped folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from annotator.gui._document import LabelDocument
from annotator.gui._labelops import empty_labels
from annotator.gui._render import build_pyramid
from annotator.gui.canvas import CanvasView


def test_a_stroke_rerenders_only_the_tiles_it_touched(qtbot) -> None:
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.resize(600, 500)
    canvas.show()
    image = np.zeros((2400, 3000, 3), np.uint8)
    doc = LabelDocument(empty_labels(2400, 3000))
    canvas.set_image(build_pyramid(image), doc)
    canvas.set_classes({0: (255, 0, 0)}, set())
    canvas.current_class = 0
    canvas.set_zoom(1.0)
    canvas.centerOn(1500, 1200)
    rendered: list[tuple[int, int, int, int, int]] = []
    original = canvas._render_overlay

    def counting(level, rect):  # noqa: ANN001, ANN202
        rendered.append((level, rect.x0, rect.y0, rect.x1, rect.y1))
        return original(level, rect)

    canvas._overlay_item._render = counting
    qtbot.waitExposed(canvas)
    qtbot.wait(100)
    first_paint = len(rendered)
    assert first_paint >= 4  # the visible 256-px tiles
    rendered.clear()
    canvas.set_brush_radius(5)
    canvas.tool.press((1500.5, 1200.5), Qt.KeyboardModifier.NoModifier)
    canvas.tool.move((1510.5, 1200.5), True)
    canvas.tool.release((1510.5, 1200.5))
    qtbot.wait(100)
    assert rendered == [(0, 1280, 1024, 1536, 1280)]  # one tile around (1500, 1200)
    assert doc.labels[1200, 1505] == 0 and doc.can_undo


def test_dropping_a_folder_opens_it(qtbot, image_folder: Path, planted) -> None:
    from _gui_helpers import TIMEOUT

    from annotator.gui.app import create_window

    window = create_window()
    qtbot.addWidget(window)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(image_folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.workspace.current is not None, timeout=TIMEOUT)
    assert window.workspace.project.root == image_folder.resolve()
    assert str(image_folder.resolve()) in window.settings.recent
    window.close()


def test_middle_button_and_space_drag_pan(qtbot) -> None:
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.resize(300, 300)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(
        build_pyramid(np.zeros((1000, 1000, 3), np.uint8)), LabelDocument(empty_labels(1000, 1000))
    )
    canvas.set_zoom(2.0)
    bar = canvas.horizontalScrollBar()
    start = bar.value()
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=QPointF(150, 150).toPoint())
    qtbot.mouseMove(viewport, QPointF(100, 150).toPoint())
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=QPointF(100, 150).toPoint())
    assert bar.value() == start + 50
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPointF(100, 150).toPoint())
    qtbot.mouseMove(viewport, QPointF(130, 150).toPoint())
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPointF(130, 150).toPoint())
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert bar.value() == start + 20
    assert not canvas.document.can_undo  # panning never paints


def test_a_fitted_image_stays_whole_when_the_view_resizes(qtbot) -> None:
    """A banner or dock appearing after the image opened must not leave it cut off."""
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(
        build_pyramid(np.zeros((900, 1200, 3), np.uint8)), LabelDocument(empty_labels(900, 1200))
    )
    canvas.resize(400, 300)
    qtbot.wait(50)
    visible = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    assert visible.width() >= 1200 - 1 and visible.height() >= 900 - 1
    canvas.set_zoom(2.0)  # once the user zooms, a resize keeps their zoom
    canvas.resize(500, 400)
    qtbot.wait(50)
    assert abs(canvas.zoom - 2.0) < 1e-6
