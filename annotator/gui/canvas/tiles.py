"""A QGraphicsItem that draws a huge array as cached tiles at the level that matches the zoom."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from annotator.gui._labelops import Rect

#: ``render(level, rect) -> array`` returns the pixels of ``rect`` (level-pixel coordinates, where
#: level ``k`` is the image downscaled by ``2**k``): ``hxwx3`` RGB or ``hxwx4`` RGBA ``uint8``, or
#: ``None`` for nothing to draw.
TileRenderer = Callable[[int, Rect], np.ndarray | None]


def array_to_qimage(array: np.ndarray) -> QImage:
    """A QImage that owns a copy of ``array`` (``hxwx3`` RGB or ``hxwx4`` RGBA ``uint8``)."""
    array = np.ascontiguousarray(array)
    height, width, channels = array.shape
    fmt = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
    return QImage(array.data, width, height, array.strides[0], fmt).copy()


class TiledItem(QGraphicsItem):
    """Draws a ``width x height`` (image pixels) surface through ``render``, tile by tile.

    Only tiles in the exposed rectangle are produced, at the coarsest level whose pixels are still
    at least one screen pixel; :meth:`invalidate` drops the tiles a change touched.
    """

    def __init__(
        self, width: int, height: int, render: TileRenderer, max_level: int, tile: int = 256
    ) -> None:
        super().__init__()
        self._width, self._height = width, height
        self._render = render
        self._max_level = max_level
        self._tile = tile
        # Tiles are kept as QPixmaps: the raster engine draws its native format fastest.
        self._cache: OrderedDict[tuple[int, int, int], QPixmap | None] = OrderedDict()
        self._cache_limit = 512
        self.smooth = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return QRectF(0, 0, self._width, self._height)

    def level_for_scale(self, scale: float) -> int:
        if scale <= 0 or scale >= 1:
            return 0
        return max(0, min(self._max_level, int(math.floor(math.log2(1.0 / scale)))))

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        scale = painter.worldTransform().m11()
        level = self.level_for_scale(scale)
        step = 1 << level
        size = self._tile
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        # Filter only when shrinking; enlarged pixels stay crisp (and cost less to draw).
        smooth = self.smooth and scale * step < 0.999
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        tx0, ty0 = int(exposed.left()) // (size * step), int(exposed.top()) // (size * step)
        tx1 = int(math.ceil(exposed.right())) // (size * step)
        ty1 = int(math.ceil(exposed.bottom())) // (size * step)
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                self._draw_tile(painter, level, tx, ty)

    def _draw_tile(self, painter: QPainter, level: int, tx: int, ty: int) -> None:
        image = self._tile_image(level, tx, ty)
        if image is None:
            return
        step = 1 << level
        x, y = tx * self._tile * step, ty * self._tile * step
        target = QRectF(x, y, image.width() * step, image.height() * step)
        painter.drawPixmap(target, image, QRectF(image.rect()))

    def _tile_image(self, level: int, tx: int, ty: int) -> QPixmap | None:
        key = (level, tx, ty)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        step, size = 1 << level, self._tile
        level_w = -(-self._width // step)
        level_h = -(-self._height // step)
        rect = Rect(tx * size, ty * size, (tx + 1) * size, (ty + 1) * size).clip(level_w, level_h)
        array = None if rect.empty else self._render(level, rect)
        image = None
        if array is not None and array.size:
            image = QPixmap.fromImage(array_to_qimage(array))
        self._cache[key] = image
        while len(self._cache) > self._cache_limit:
            self._cache.popitem(last=False)
        return image

    def invalidate(self, rect: Rect | None = None) -> None:
        """Forget tiles overlapping ``rect`` (image pixels; ``None`` = all) and repaint them."""
        if rect is None:
            self._cache.clear()
            self.update()
            return
        for key in list(self._cache):
            level, tx, ty = key
            span = self._tile << level
            overlaps_x = tx * span < rect.x1 and (tx + 1) * span > rect.x0
            if overlaps_x and ty * span < rect.y1 and (ty + 1) * span > rect.y0:
                del self._cache[key]
        self.update(QRectF(rect.x0, rect.y0, rect.x1 - rect.x0, rect.y1 - rect.y0))
