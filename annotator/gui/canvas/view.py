"""The canvas: a QGraphicsView showing the image, the label/proposal overlay and tool feedback.

Zoom with the wheel, pan with the middle button or Space+drag, Ctrl+wheel or ``[`` ``]`` change
the brush size. Edits go to a :class:`~annotator.gui._document.LabelDocument`; the view repaints
only the tiles of the rectangle that changed.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainterPath,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from annotator.gui._document import LabelDocument
from annotator.gui._labelops import Rect
from annotator.gui._render import (
    LABEL_ALPHA,
    PROPOSAL_ALPHA,
    image_tile,
    make_lut,
    overlay_tile,
)
from annotator.gui.canvas.tiles import TiledItem
from annotator.gui.canvas.tools import TOOLS, Tool
from annotator.gui.segments import SegmentLayer

MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0
MIN_BRUSH, MAX_BRUSH = 1.0, 500.0


class CanvasView(QGraphicsView):
    edited = Signal()  # a finished, undoable change to the labels
    class_picked = Signal(int)
    message = Signal(str)
    failed = Signal(str, str)  # message, details: a tool raised (shown, never fatal)
    cursor_moved = Signal(int, int)  # image pixel under the cursor
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(40, 40, 44))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # folders dropped on the canvas go to the main window
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.document: LabelDocument | None = None
        self.proposal: np.ndarray | None = None
        self.image: np.ndarray | None = None
        self.current_class: int | None = None
        self.brush_radius = 8.0
        # True while the view shows the whole image and the user has not zoomed since: then a
        # resize (window shown, banner or dock appearing) keeps the whole image in view.
        self._fitted = False
        self.fill_tolerance = 16
        self.outline_only = False
        self._pyramid: list[np.ndarray] = []
        self._colors: dict[int, tuple[int, int, int]] = {}
        self._hidden: set[int] = set()
        self._luts: tuple[np.ndarray, np.ndarray] | None = None
        self._image_item: TiledItem | None = None
        self._overlay_item: TiledItem | None = None
        self._opacity = 0.55
        self._panning: QPointF | None = None
        self._space = False
        self._pressed = False
        self.tools = {cls.name: cls(self) for cls in TOOLS}
        self.tool: Tool = self.tools["brush"]
        self._brush_item = self._make_brush_item()
        self._sketch_item = self._make_sketch_item()
        self.segment_layer = SegmentLayer(self)  # zegformer segments (annotator.gui.segments)

    # -- content -------------------------------------------------------------------------------

    def clear(self) -> None:
        for item in (self._image_item, self._overlay_item):
            if item is not None:
                self.scene().removeItem(item)
        self._image_item = self._overlay_item = None
        self.document, self.proposal, self.image, self._pyramid = None, None, None, []
        self.segment_layer.set_segments(None, (), {})
        self.tool.cancel()

    def set_image(self, pyramid: list[np.ndarray], document: LabelDocument) -> None:
        """Show ``pyramid[0]`` (``HxWx3 uint8``) with its label ``document``; fit it to the view."""
        self.clear()
        self._pyramid, self.image = pyramid, pyramid[0]
        height, width = self.image.shape[:2]
        levels = len(pyramid) - 1 + 6  # overlays stay sampled below the smallest image level
        self._image_item = TiledItem(width, height, self._render_image, len(pyramid) - 1, 512)
        self._image_item.smooth = True
        self._overlay_item = TiledItem(width, height, self._render_overlay, levels, 256)
        self._overlay_item.setOpacity(self._opacity)
        self._overlay_item.setZValue(1)
        self.scene().addItem(self._image_item)
        self.scene().addItem(self._overlay_item)
        self.scene().setSceneRect(QRectF(0, 0, width, height))
        self.document = document
        document.add_listener(self._document_changed)
        self._luts = None
        self.fit()

    def set_proposal(self, proposal: np.ndarray | None) -> None:
        """Show ``proposal`` (``[H, W]`` class ids, same dtype convention as labels) or none."""
        self.proposal = proposal
        self.refresh_overlay()

    def set_classes(self, colors: Mapping[int, tuple[int, int, int]], hidden: set[int]) -> None:
        self._colors, self._hidden = dict(colors), set(hidden)
        self._luts = None
        self.refresh_overlay()

    def set_opacity(self, opacity: float) -> None:
        self._opacity = opacity
        if self._overlay_item is not None:
            self._overlay_item.setOpacity(opacity)

    def set_outline_only(self, outline_only: bool) -> None:
        self.outline_only = outline_only
        self.refresh_overlay()

    def refresh_overlay(self, rect: Rect | None = None) -> None:
        if self._overlay_item is not None:
            self._overlay_item.invalidate(rect)

    def _document_changed(self, rect: Rect) -> None:
        self.refresh_overlay(rect)

    def _render_image(self, level: int, rect: Rect) -> np.ndarray:
        return image_tile(self._pyramid, level, rect)

    def _render_overlay(self, level: int, rect: Rect) -> np.ndarray | None:
        labels = None if self.document is None else self.document.labels
        dtype = labels.dtype if labels is not None else np.dtype(np.uint8)
        if self._luts is None or self._luts[0].shape[0] != np.iinfo(dtype).max + 1:
            self._luts = (
                make_lut(self._colors, self._hidden, dtype, LABEL_ALPHA),
                make_lut(self._colors, self._hidden, dtype, PROPOSAL_ALPHA),
            )
        return overlay_tile(labels, self.proposal, rect, 1 << level, *self._luts, self.outline_only)

    # -- zoom and pan --------------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        if self.image is not None:
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self._fitted = True
            self.zoom_changed.emit(self.zoom)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def one_to_one(self) -> None:
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float) -> None:
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self._fitted = False
        self.scale(zoom / self.zoom, zoom / self.zoom)
        self._update_brush_item()
        self.zoom_changed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            return
        factor = 1.0015**delta
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_brush_radius(self.brush_radius * factor)
        else:
            self.set_zoom(self.zoom * factor)

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = min(MAX_BRUSH, max(MIN_BRUSH, radius))
        self._update_brush_item()
        self.message.emit(f"Brush size {2 * self.brush_radius:.0f} px")

    # -- tools ---------------------------------------------------------------------------------

    def set_tool(self, name: str) -> None:
        self.tool.cancel()
        self.tool = self.tools[name]
        self._brush_item.setVisible(self.tool.shows_brush)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def notify(self, text: str) -> None:
        self.message.emit(text)

    def notify_needs_class(self) -> None:
        self.message.emit("Type a class name in the class panel first (or pick one).")

    def show_sketch(self, path: QPainterPath) -> None:
        self._sketch_item.setPath(path)

    def _make_brush_item(self) -> QGraphicsEllipseItem:
        item = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 255, 255, 220), 1.5)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(10)
        self.scene().addItem(item)
        return item

    def _make_sketch_item(self) -> QGraphicsPathItem:
        item = QGraphicsPathItem()
        pen = QPen(QColor(255, 235, 59), 2)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(10)
        self.scene().addItem(item)
        return item

    def _update_brush_item(self, center: QPointF | None = None) -> None:
        center = self._brush_item.rect().center() if center is None else center
        r = self.brush_radius
        self._brush_item.setRect(QRectF(center.x() - r, center.y() - r, 2 * r, 2 * r))

    def _image_point(self, event: QMouseEvent) -> tuple[float, float]:
        scene = self.mapToScene(event.position().toPoint())
        return scene.x(), scene.y()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.MiddleButton or (
            self._space and event.button() == Qt.MouseButton.LeftButton
        ):
            self._panning = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton and self.document is not None:
            self._pressed = True
            self._safely(self.tool.press, self._image_point(event), event.modifiers())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - int(delta.x()))
            v.setValue(v.value() - int(delta.y()))
            return
        point = self._image_point(event)
        self._update_brush_item(QPointF(*point))
        self.cursor_moved.emit(int(np.floor(point[0])), int(np.floor(point[1])))
        if self.document is not None:
            self._safely(self.tool.move, point, self._pressed)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._panning is not None:
            self._panning = None
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        elif event.button() == Qt.MouseButton.LeftButton and self._pressed:
            self._pressed = False
            self._safely(self.tool.release, self._image_point(event))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.document is not None:
            self._safely(self.tool.double_click, self._image_point(event))

    def contextMenuEvent(self, event) -> None:  # noqa: N802, ANN001 - right-click a segment
        scene = self.mapToScene(event.pos())
        menu = self.segment_layer.menu(int(np.floor(scene.x())), int(np.floor(scene.y())))
        if menu is not None:
            menu.exec(event.globalPos())

    def _safely(self, action: Callable[..., object], *args: object) -> object:
        """Run a tool step; an unexpected error becomes a notice instead of closing the app."""
        if self.document is not None and self.document.busy:
            self.message.emit("One moment: the proposal is still being accepted.")
            return None
        try:
            return action(*args)
        except Exception as error:  # noqa: BLE001
            if self.document is not None and self.document._open is not None:
                self.document.end()
            self.failed.emit(f"The {self.tool.title} tool failed: {error}", traceback.format_exc())
            return None

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_BracketLeft:
            self.set_brush_radius(self.brush_radius / 1.25)
        elif key == Qt.Key.Key_BracketRight:
            self.set_brush_radius(self.brush_radius * 1.25)
        elif not self._safely(self.tool.key, key):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        else:
            super().keyReleaseEvent(event)
