"""ZegFormer segments on the canvas: outlines, top-3 names on hover, whole-segment accept/rename.

The zegformer proposer hands back class-agnostic segments (``Proposal.segments``, a
:class:`~annotator.engine.proposers.segments.SegmentSet`) with per-segment class scores. This
layer draws their outlines over the image; hovering one highlights it and shows its three best
names with scores; the accept tool writes the whole segment with its best class; right-clicking a segment offers its names and every class, and choosing
one writes the whole segment with that class in one undoable step ("rename").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QMenu,
)

from annotator.gui._labelops import Rect


def segment_path(mask: np.ndarray) -> QPainterPath:
    """Outline of ``mask`` (bool ``[H, W]``) in image pixel coordinates (pixel edges)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for contour in contours:
        points = [QPointF(float(x) + 0.5, float(y) + 0.5) for x, y in contour[:, 0]]
        if len(points) >= 2:
            path.addPolygon(QPolygonF([*points, points[0]]))
    return path


def hover_text(segments: Any, segment: int, names: dict[int, str], ids: Sequence[int]) -> str:
    """``"sky 0.91 · grass 0.05 · road 0.02"``: the segment's three best names (current names of
    the class ids ``ids`` the proposal was asked for) with their scores."""
    parts = []
    for index, score in _top_indices(segments, segment):
        parts.append(f"{names.get(ids[index], segments.class_names[index])} {score:.2f}")
    return " · ".join(parts)


def _top_indices(segments: Any, segment: int, k: int = 3) -> list[tuple[int, float]]:
    row = segments.scores[segment]
    return [(int(i), float(row[i])) for i in np.argsort(-row, kind="stable")[:k]]


def _pen(colour: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour, width, style)
    pen.setCosmetic(True)  # same width on screen at every zoom
    return pen


class SegmentLayer(QObject):
    """Owns the segment items of one :class:`~annotator.gui.canvas.view.CanvasView`."""

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self.view = view
        self.segments: Any = None
        self.ids: tuple[int, ...] = ()
        self.names: dict[int, str] = {}
        self.hovered: int | None = None
        self._outline = self._add_path(
            _pen(QColor(255, 255, 255, 200), 1.0, Qt.PenStyle.DashLine), 2
        )
        self._highlight = self._add_path(_pen(QColor(255, 220, 0), 2.5), 3)
        self._box = QGraphicsRectItem()  # the label's dark background, constant size on screen
        self._box.setBrush(QBrush(QColor(20, 20, 24, 210)))
        self._box.setPen(QPen(Qt.PenStyle.NoPen))
        self._box.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self._box.setZValue(4)
        self._label = QGraphicsSimpleTextItem(self._box)
        self._label.setBrush(QBrush(QColor(255, 255, 255)))
        self._label.setPos(6, 3)
        self._box.hide()
        view.scene().addItem(self._box)
        view.cursor_moved.connect(self.hover)

    def _add_path(self, pen: QPen, z: float) -> QGraphicsPathItem:
        item = QGraphicsPathItem()
        item.setPen(pen)
        item.setZValue(z)
        self.view.scene().addItem(item)
        return item

    @property
    def label_text(self) -> str:
        """What the hover label shows now ("" when hidden)."""
        return self._label.text() if self._box.isVisible() else ""

    def set_segments(self, segments: Any, ids: Sequence[int], names: dict[int, str]) -> None:
        """Show ``segments`` (a SegmentSet sized like the shown image, or None) whose class
        indices mean the class ids ``ids``; ``names`` = current class names by id."""
        document = self.view.document
        if segments is not None and (
            document is None or segments.index_map.shape != document.shape
        ):
            segments = None
        self.segments, self.ids, self.names = segments, tuple(ids), dict(names)
        self.hovered = None
        self._highlight.setPath(QPainterPath())
        self._box.hide()
        self._outline.setPath(self._all_outlines() if segments is not None else QPainterPath())

    def _all_outlines(self) -> QPainterPath:
        path = QPainterPath()
        for segment in range(self.segments.count):
            path.addPath(segment_path(self.segments.mask(segment)))
        return path

    def segment_at(self, x: int, y: int) -> int | None:
        return None if self.segments is None else self.segments.segment_at(y, x)

    def hover(self, x: int, y: int) -> None:
        """Highlight the segment under image pixel ``(x, y)`` and show its top-3 names."""
        segment = self.segment_at(x, y)
        if segment is None:
            self._box.hide()
            self._highlight.setPath(QPainterPath())
            self.hovered = None
            return
        if segment != self.hovered:
            self.hovered = segment
            self._highlight.setPath(segment_path(self.segments.mask(segment)))
            self._label.setText(hover_text(self.segments, segment, self.names, self.ids))
            size = self._label.boundingRect()
            self._box.setRect(0, 0, size.width() + 12, size.height() + 6)
        self._box.setPos(QPointF(x + 1.5, y + 1.5))
        self._box.show()

    def best_class(self, segment: int) -> int:
        return int(self.ids[_top_indices(self.segments, segment, 1)[0][0]])

    def segment_region(self, x: int, y: int) -> tuple[Rect, np.ndarray, int] | None:
        """``(rect, mask, class id)`` of the whole segment under ``(x, y)`` with its best class,
        for the accept tool; None without segments there."""
        segment = self.segment_at(x, y)
        if segment is None:
            return None
        return (*self._region(segment), self.best_class(segment))

    def _region(self, segment: int) -> tuple[Rect, np.ndarray]:
        mask = self.segments.mask(segment)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        rect = Rect(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return rect, mask[rect.y0 : rect.y1, rect.x0 : rect.x1]

    def rename(self, segment: int, class_id: int) -> bool:
        """Label every pixel of ``segment`` ``class_id`` (one undo step); True when it changed."""
        document = self.view.document
        rect, mask = self._region(segment)
        if document is None or not document.apply("Rename segment", rect, mask, class_id):
            return False
        self.view.edited.emit()
        return True

    def menu(self, x: int, y: int) -> QMenu | None:
        """The right-click menu of the segment under ``(x, y)``: its top-3 names with scores,
        then every other class; choosing one renames the whole segment."""
        segment = self.segment_at(x, y)
        if segment is None:
            return None
        menu = QMenu(self.view)
        menu.setTitle("Label segment as")
        top = _top_indices(self.segments, segment)
        for index, score in top:
            class_id = self.ids[index]
            self._action(
                menu, f"{self.names.get(class_id, class_id)}  ({score:.2f})", segment, class_id
            )
        menu.addSeparator()
        shown = {self.ids[index] for index, _ in top}
        for class_id, name in self.names.items():
            if class_id not in shown:
                self._action(menu, name, segment, class_id)
        return menu

    def _action(self, menu: QMenu, text: str, segment: int, class_id: int) -> QAction:
        action = menu.addAction(text)
        action.setData(class_id)
        action.triggered.connect(lambda _=False, s=segment, c=class_id: self.rename(s, c))
        return action


def show_segments(canvas: Any, workspace: Any, relpath: str) -> None:
    """Give ``canvas`` the segments of ``relpath``'s current proposal (none for dense ones)."""
    found = workspace.proposal_segments(relpath)
    names = {c.id: c.name for c in workspace.classes()}
    if found is None:
        canvas.segment_layer.set_segments(None, (), names)
    else:
        canvas.segment_layer.set_segments(found[0], found[1], names)
