"""Canvas tools: how mouse input turns into label edits. The pixel work is in ``_labelops``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPainterPath

from annotator.gui._labelops import (
    Rect,
    connected_region,
    polygon_mask,
    similar_colour_region,
    stroke_mask,
)

if TYPE_CHECKING:
    from annotator.gui.canvas.view import CanvasView

Point = tuple[float, float]


class Tool:
    """Base class: a tool gets image-pixel points and the active modifiers from the view."""

    name = ""
    title = ""
    shortcut = ""
    help = ""
    shows_brush = False

    def __init__(self, view: CanvasView) -> None:
        self.view = view

    def press(self, point: Point, modifiers: Qt.KeyboardModifier) -> None: ...

    def move(self, point: Point, dragging: bool) -> None: ...

    def release(self, point: Point) -> None: ...

    def double_click(self, point: Point) -> None: ...

    def key(self, key: int) -> bool:
        """Handle a key press; return True when used."""
        return False

    def cancel(self) -> None: ...

    @staticmethod
    def pixel(point: Point) -> tuple[int, int]:
        return int(np.floor(point[0])), int(np.floor(point[1]))


class BrushTool(Tool):
    name, title, shortcut = "brush", "Brush", "B"
    help = "Paint the current class; Ctrl+wheel or [ ] change the size"
    shows_brush = True
    edit_name = "Brush"

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self._last: Point | None = None

    def value(self) -> int | None:
        return self.view.current_class

    def press(self, point: Point, modifiers: Qt.KeyboardModifier) -> None:
        doc, value = self.view.document, self.value()
        if doc is None or value is None:
            self.view.notify_needs_class()
            return
        doc.begin(self.edit_name)
        self._last = point
        self.segment(point)

    def move(self, point: Point, dragging: bool) -> None:
        if dragging and self._last is not None:
            self.segment(point)

    def segment(self, point: Point) -> None:
        """Paint from the last point to ``point`` (one stroke segment)."""
        doc, value = self.view.document, self.value()
        if doc is None or value is None or self._last is None:
            return
        height, width = doc.shape
        found = stroke_mask(self._last, point, self.view.brush_radius, width, height)
        self._last = point
        if found is not None:
            doc.write(found[0], found[1], value)

    def release(self, point: Point) -> None:
        doc = self.view.document
        if self._last is not None and doc is not None:
            self._last = None
            if doc.end() is not None:
                self.view.edited.emit()

    def cancel(self) -> None:
        self.release((0.0, 0.0))


class EraserTool(BrushTool):
    name, title, shortcut = "eraser", "Eraser", "E"
    help = "Erase labels back to unlabeled; Ctrl+wheel or [ ] change the size"
    edit_name = "Erase"

    def value(self) -> int | None:
        doc = self.view.document
        return None if doc is None else doc.unlabeled


class PolygonTool(Tool):
    name, title, shortcut = "polygon", "Polygon", "P"
    help = "Click points; double-click, Enter or click the first point to fill; Esc cancels"

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self.points: list[Point] = []
        self._hover: Point | None = None

    def press(self, point: Point, modifiers: Qt.KeyboardModifier) -> None:
        if len(self.points) >= 3 and self._near_first(point):
            self.close()
            return
        self.points.append(point)
        self._show()

    def _near_first(self, point: Point) -> bool:
        first = self.points[0]
        tolerance = 6.0 / max(self.view.zoom, 1e-6)  # six screen pixels
        return abs(point[0] - first[0]) <= tolerance and abs(point[1] - first[1]) <= tolerance

    def move(self, point: Point, dragging: bool) -> None:
        self._hover = point
        self._show()

    def double_click(self, point: Point) -> None:
        self.close()

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close()
        elif key == Qt.Key.Key_Escape and self.points:
            self.cancel()
        elif key == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
            self._show()
        else:
            return False
        return True

    def close(self) -> None:
        doc, value = self.view.document, self.view.current_class
        points, self.points = self.points, []
        self._show()
        if doc is None or value is None:
            self.view.notify_needs_class()
            return
        height, width = doc.shape
        found = polygon_mask(points, width, height)
        if found is not None and doc.apply("Polygon", found[0], found[1], value):
            self.view.edited.emit()

    def cancel(self) -> None:
        self.points = []
        self._show()

    def _show(self) -> None:
        path = QPainterPath()
        points = self.points + ([self._hover] if self._hover and self.points else [])
        for index, (x, y) in enumerate(points):
            (path.lineTo if index else path.moveTo)(QPointF(x, y))
        self.view.show_sketch(path)


class _RegionTool(Tool, ABC):
    """A click picks a region; subclasses say which and what to write there."""

    edit_name = ""

    def press(self, point: Point, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.view.document
        if doc is None:
            return
        x, y = self.pixel(point)
        height, width = doc.shape
        if not (0 <= x < width and 0 <= y < height):
            return
        found = self.region(x, y, modifiers)
        if found is None:
            return
        rect, mask, value = found
        if value is not None and doc.apply(self.edit_name, rect, mask, value):
            self.view.edited.emit()

    @abstractmethod
    def region(
        self, x: int, y: int, modifiers: Qt.KeyboardModifier
    ) -> tuple[Rect, np.ndarray, int | np.ndarray | None] | None:
        """The ``(rect, mask, value)`` to write for a click at pixel ``(x, y)``, or None."""


class FillTool(_RegionTool):
    name, title, shortcut = "fill", "Fill", "F"
    help = "Click: fill similar colour with the current class; Shift+click: fill a proposal region"
    edit_name = "Fill"

    def region(self, x: int, y: int, modifiers: Qt.KeyboardModifier):  # type: ignore[override]
        value = self.view.current_class
        if value is None:
            self.view.notify_needs_class()
            return None
        use_proposal = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        if use_proposal and self.view.proposal is not None:
            found = connected_region(self.view.proposal, x, y)
        elif self.view.image is not None:
            found = similar_colour_region(self.view.image, x, y, self.view.fill_tolerance)
        else:
            return None
        return None if found is None else (*found, value)


class AcceptRegionTool(_RegionTool):
    name, title, shortcut = "accept", "Accept region", "R"
    help = "Click a proposed region to accept just that connected region with its class"
    edit_name = "Accept region"

    def region(self, x: int, y: int, modifiers: Qt.KeyboardModifier):  # type: ignore[override]
        segment = self.view.segment_layer.segment_region(x, y)  # zegformer: the whole segment
        if segment is not None:
            return segment
        proposal = self.view.proposal
        if proposal is None or proposal[y, x] == self.view.document.unlabeled:
            self.view.notify("Nothing is proposed here.")
            return None
        found = connected_region(proposal, x, y)
        return None if found is None else (*found, int(proposal[y, x]))


class ReassignTool(_RegionTool):
    name, title, shortcut = "reassign", "Reassign", "G"
    help = "Click a labelled region to give the whole connected region the current class"
    edit_name = "Reassign"

    def region(self, x: int, y: int, modifiers: Qt.KeyboardModifier):  # type: ignore[override]
        doc, value = self.view.document, self.view.current_class
        if value is None:
            self.view.notify_needs_class()
            return None
        if doc.labels[y, x] == doc.unlabeled:
            self.view.notify("There is no label here to reassign.")
            return None
        found = connected_region(doc.labels, x, y)
        return None if found is None else (*found, value)


class PickTool(Tool):
    name, title, shortcut = "pick", "Pick class", "I"
    help = "Click to make the class under the cursor (label, else proposal) current"

    def press(self, point: Point, modifiers: Qt.KeyboardModifier) -> None:
        doc = self.view.document
        x, y = self.pixel(point)
        if doc is None or not (0 <= x < doc.shape[1] and 0 <= y < doc.shape[0]):
            return
        value = int(doc.labels[y, x])
        if value == doc.unlabeled and self.view.proposal is not None:
            value = int(self.view.proposal[y, x])
        if value != doc.unlabeled:
            self.view.class_picked.emit(value)


TOOLS: tuple[type[Tool], ...] = (
    BrushTool,
    EraserTool,
    PolygonTool,
    FillTool,
    AcceptRegionTool,
    ReassignTool,
    PickTool,
)
