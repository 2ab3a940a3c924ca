"""The image list: lazily loaded thumbnails, status filter, counts, error marks."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QListView, QVBoxLayout, QWidget

from annotator.gui.canvas.tiles import array_to_qimage
from annotator.imageio import to_rgb8
from annotator.wording import plural

THUMB = 64
STATUS_MARK = {"new": "○", "proposed": "◐", "edited": "✎", "reviewed": "✓"}
FILTERS = (
    ("All images", None),
    ("New", "new"),
    ("Proposed", "proposed"),
    ("Edited", "edited"),
    ("Reviewed", "reviewed"),
    ("Review queue (least confident first)", "queue"),
    ("Unreadable", "error"),
)


def read_thumbnail(path: Path, size: int = THUMB) -> np.ndarray:
    """A small ``hxwx3 uint8`` preview; JPEG files decode at reduced size (fast on huge images)."""
    with Image.open(path) as image:
        image.draft("RGB", (size * 2, size * 2))
        image = ImageOps.exif_transpose(image)
        image.thumbnail((size, size))
        return to_rgb8(image)


class _Thumbnails(QObject):
    ready = Signal(str, object, object)  # relpath, array or None, the folder (Path) it is in

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotator-thumbs")

        self._closed = False

    def request(self, relpath: str, root: Path) -> None:
        def work() -> None:
            try:
                array: Any = read_thumbnail(root / relpath)
            except Exception:  # noqa: BLE001 - the list shows the reason from the store
                array = None
            if not self._closed:
                self.ready.emit(relpath, array, root)

        if not self._closed:
            self._pool.submit(work)

    def shutdown(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


class ImageListModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.records: list[Any] = []
        self.root: Path | None = None
        self._icons: dict[str, QIcon] = {}
        self._asked: set[str] = set()
        self.thumbnails = _Thumbnails()
        self.thumbnails.ready.connect(self._thumbnail_ready)

    def set_records(self, records: list[Any], root: Path | None) -> None:
        same_rows = root == self.root and [r.relpath for r in records] == [
            r.relpath for r in self.records
        ]
        if same_rows and records:
            # Only statuses changed: update in place (no relayout, selection and scroll kept).
            self.records = list(records)
            self.dataChanged.emit(self.index(0), self.index(len(records) - 1))
            return
        self.beginResetModel()
        if root != self.root:
            self._icons.clear()
            self._asked.clear()
        self.records, self.root = list(records), root
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon(record.relpath)
        if role == Qt.ItemDataRole.ToolTipRole:
            size = f"{record.width} x {record.height}" if record.width else "size not read yet"
            confidence = (
                ""
                if record.mean_confidence is None
                else f"\nmean confidence of the proposal: {record.mean_confidence:.0%}"
            )
            return record.error or f"{record.relpath}\n{size}, {record.status}{confidence}"
        if role == Qt.ItemDataRole.ForegroundRole and record.error:
            return QColor(220, 70, 60)
        if role == Qt.ItemDataRole.UserRole:
            return record.relpath
        return None

    @staticmethod
    def _text(record: Any) -> str:
        if record.error:
            return f"⚠ {record.relpath}\nunreadable: {record.error.split(': ', 1)[-1][:60]}"
        confidence = (
            "" if record.mean_confidence is None else f" · confidence {record.mean_confidence:.0%}"
        )
        return f"{STATUS_MARK.get(record.status, '')} {record.relpath}\n{record.status}{confidence}"

    def _icon(self, relpath: str) -> QIcon | None:
        icon = self._icons.get(relpath)
        if icon is None and relpath not in self._asked and self.root is not None:
            self._asked.add(relpath)
            self.thumbnails.request(relpath, self.root)
        return icon

    def _thumbnail_ready(self, relpath: str, array: np.ndarray | None, root: Path) -> None:
        if array is None or root != self.root:
            return  # unreadable, or read in the folder open before (same name, other image)
        self._icons[relpath] = QIcon(QPixmap.fromImage(array_to_qimage(array)))
        for row, record in enumerate(self.records):
            if record.relpath == relpath:
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
                break


class ImageListPanel(QWidget):
    """List + filter + counts. ``image_activated(relpath)`` when the user picks an image."""

    image_activated = Signal(str)
    filter_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QComboBox()
        for title, key in FILTERS:
            self.filter.addItem(title, key)
        self.counts = QLabel("No folder open")
        self.counts.setWordWrap(True)
        self.model = ImageListModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setUniformItemSizes(True)
        self.view.setSpacing(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for widget in (self.filter, self.counts, self.view):
            layout.addWidget(widget)
        self.filter.currentIndexChanged.connect(lambda _: self.filter_changed.emit())
        self.view.clicked.connect(self._clicked)
        self.view.activated.connect(self._clicked)

    @property
    def filter_key(self) -> str | None:
        return self.filter.currentData()

    def _clicked(self, index: QModelIndex) -> None:
        self.image_activated.emit(index.data(Qt.ItemDataRole.UserRole))

    def show_records(self, shown: list[Any], every: list[Any], root: Path | None) -> None:
        """Show ``shown`` (the filtered list); ``every`` gives the counts."""
        self.model.set_records(shown, root)
        counts = Counter(r.status for r in every)
        errors = sum(1 for r in every if r.error)
        parts = [f"{counts.get(s, 0)} {s}" for s in ("new", "proposed", "edited", "reviewed")]
        tail = f" · {errors} unreadable" if errors else ""
        self.counts.setText(f"{plural(len(every), 'image')}: " + " · ".join(parts) + tail)

    def select(self, relpath: str) -> None:
        for row, record in enumerate(self.model.records):
            if record.relpath == relpath:
                self.view.setCurrentIndex(self.model.index(row))
                return
        self.view.clearSelection()

    def order(self) -> list[str]:
        return [r.relpath for r in self.model.records]
