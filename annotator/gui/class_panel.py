"""The class panel: type a class (with synonyms), pick, show/hide, rename, merge, delete;
overlay opacity and outline mode."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)


def parse_class_text(text: str) -> tuple[str, tuple[str, ...]] | None:
    """``"tv; monitor"`` -> ``("tv", ("monitor",))``; ``None`` for blank input."""
    parts = [p.strip() for p in text.split(";")]
    parts = [p for p in parts if p]
    if not parts:
        return None
    return parts[0], tuple(dict.fromkeys(parts[1:]))


def parse_class_list(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """``"sky, tree; bush, grass"`` -> ``[("sky", ()), ("tree", ("bush",)), ("grass", ())]``.

    Commas separate classes and ``;`` separates a class's synonyms, as on the command line;
    blank entries are dropped.
    """
    parsed = (parse_class_text(part) for part in text.split(","))
    return [entry for entry in parsed if entry is not None]


NOVEL_TIP = "novel: no labels yet: proposals come from zero-shot"


def swatch(color: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


class ClassEntry(QLineEdit):
    """The class box: Escape leaves it (``left`` is emitted; what was typed stays)."""

    left = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape:
            self.left.emit()
            return
        super().keyPressEvent(event)


class ClassPanel(QWidget):
    """``typing_done`` is emitted when Enter (classes added) or Escape leaves the class box:
    the window then gives the keyboard back to the canvas, so the tool keys (B, E, A...) work
    again, as after typing a label in labelme's dialog."""

    typing_done = Signal()
    add_requested = Signal(str, object)  # name, synonyms tuple
    rename_requested = Signal(int, str, object)  # id, name, synonyms
    merge_requested = Signal(int, int)  # source id, target id
    delete_requested = Signal(int)
    current_changed = Signal(object)  # class id or None
    hidden_changed = Signal(object)  # set of hidden class ids
    opacity_changed = Signal(float)
    outline_changed = Signal(bool)
    memory_toggled = Signal(int, bool)  # class id, use its class memory in proposals

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = ClassEntry()
        self.entry.setPlaceholderText("Type classes, then Enter: sky, tree, …")
        self.entry.setToolTip(
            "Commas separate classes; ';' separates a class's synonyms (tv; monitor). Enter adds "
            "them, Escape goes back to the image (tool keys work again)."
        )
        self.list = QListWidget()
        self.rename_button = QPushButton("Rename…")
        self.merge_button = QPushButton("Merge into…")
        self.delete_button = QPushButton("Delete…")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity_value = QLabel("55%")
        self.opacity_value.setMinimumWidth(36)
        self.outline = QCheckBox("Outline only")
        self.memory_box = QCheckBox("Use the class memory")
        self.memory_box.setToolTip(
            "Proposals for this class use what its saved labels look like in this folder "
            "(no retraining needed). Untick to compare with the text alone."
        )
        self._classes: list[Any] = []
        self._labelled: set[int] = set()
        self._memory: tuple[dict[int, int], set[int]] = ({}, set())
        self._layout()
        self._connect()

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.rename_button, self.merge_button, self.delete_button):
            buttons.addWidget(button)
        overlay = QHBoxLayout()
        overlay.addWidget(QLabel("Opacity"))
        overlay.addWidget(self.opacity)
        overlay.addWidget(self.opacity_value)
        overlay.addWidget(self.outline)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.entry)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(self.memory_box)
        layout.addLayout(overlay)

    def _connect(self) -> None:
        self.entry.returnPressed.connect(self._add)
        self.entry.left.connect(self.typing_done.emit)
        self.list.currentItemChanged.connect(lambda *_: self.current_changed.emit(self.current_id))
        self.list.itemChanged.connect(lambda _: self.hidden_changed.emit(self.hidden_ids()))
        self.rename_button.clicked.connect(self._rename)
        self.merge_button.clicked.connect(self._merge)
        self.delete_button.clicked.connect(self._delete)
        self.opacity.valueChanged.connect(lambda v: self.opacity_value.setText(f"{v}%"))
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100))
        self.outline.toggled.connect(self.outline_changed.emit)
        self.current_changed.connect(self._show_memory_switch)
        self.memory_box.clicked.connect(self._memory_clicked)

    def _add(self) -> None:
        entries = parse_class_list(self.entry.text())
        if entries:
            self.entry.clear()
        for name, synonyms in entries:
            self.add_requested.emit(name, synonyms)
        self.typing_done.emit()

    # -- state ---------------------------------------------------------------------------------

    def set_classes(self, classes: list[Any], labelled: set[int]) -> None:
        """Show ``classes`` (ClassInfo); those not in ``labelled`` are marked novel."""
        current, hidden = self.current_id, self.hidden_ids()
        self._classes, self._labelled = list(classes), set(labelled)
        self.list.blockSignals(True)
        self.list.clear()
        for number, info in enumerate(classes, start=1):
            item = self._item(number, info, info.id not in labelled, info.id in hidden)
            item.setText(item.text() + self._memory_badge(info.id))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.select(current if current in {c.id for c in classes} else None)

    @staticmethod
    def _item(number: int, info: Any, novel: bool, hidden: bool) -> QListWidgetItem:
        key = f"{number}  " if number <= 9 else "    "
        synonyms = f"  ({', '.join(info.synonyms)})" if info.synonyms else ""
        badge = "   · novel" if novel else ""
        item = QListWidgetItem(swatch(info.color), f"{key}{info.name}{synonyms}{badge}")
        item.setData(Qt.ItemDataRole.UserRole, info.id)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked)
        item.setToolTip(
            "Untick to hide this class on the canvas" + (f"\n{NOVEL_TIP}" if novel else "")
        )
        return item

    def set_memory(self, counts: dict[int, int], disabled: set[int]) -> None:
        """Show ``counts`` (class id -> labelled images in the class memory) and which classes
        have their memory switched off."""
        self._memory = (dict(counts), set(disabled))
        self.set_classes(self._classes, self._labelled)

    def memory_images(self, class_id: int) -> int:
        return self._memory[0].get(class_id, 0)

    def _memory_badge(self, class_id: int) -> str:
        images = self.memory_images(class_id)
        if not images:
            return ""
        plural = "image" if images == 1 else "images"
        off = " (off)" if class_id in self._memory[1] else ""
        return f"   · memory: {images} {plural}{off}"

    def _show_memory_switch(self, class_id: int | None) -> None:
        has_memory = class_id is not None and self.memory_images(class_id) > 0
        info = self._info(class_id)
        name = f" for '{info.name}'" if has_memory and info is not None else ""
        self.memory_box.setText(f"Use the class memory{name}")
        self.memory_box.setEnabled(has_memory)
        self.memory_box.setChecked(has_memory and class_id not in self._memory[1])

    def _memory_clicked(self, checked: bool) -> None:
        if self.current_id is not None:
            self.memory_toggled.emit(self.current_id, checked)

    @property
    def classes(self) -> list[Any]:
        return list(self._classes)

    @property
    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select(self, class_id: int | None) -> None:
        if class_id is None and self.list.count():
            self.list.setCurrentRow(0)
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == class_id:
                self.list.setCurrentRow(row)
        self.current_changed.emit(self.current_id)

    def select_number(self, number: int) -> None:
        if 1 <= number <= len(self._classes):
            self.select(self._classes[number - 1].id)

    def hidden_ids(self) -> set[int]:
        return {
            int(item.data(Qt.ItemDataRole.UserRole))
            for item in (self.list.item(r) for r in range(self.list.count()))
            if item.checkState() != Qt.CheckState.Checked
        }

    def _info(self, class_id: int | None) -> Any:
        return next((c for c in self._classes if c.id == class_id), None)

    # -- dialogs -------------------------------------------------------------------------------

    def _rename(self) -> None:
        info = self._info(self.current_id)
        if info is None:
            return
        text, ok = QInputDialog.getText(
            self, "Rename class", "New name (synonyms after ';'):", text=info.prompt
        )
        parsed = parse_class_text(text) if ok else None
        if parsed is not None:
            self.rename_requested.emit(info.id, *parsed)

    def _merge(self) -> None:
        info = self._info(self.current_id)
        others = [c for c in self._classes if info is not None and c.id != info.id]
        if not others:
            return
        names = [c.name for c in others]
        name, ok = QInputDialog.getItem(
            self, "Merge class", f"Merge '{info.name}' into:", names, 0, False
        )
        if ok and self._confirm(
            f"Relabel every '{info.name}' pixel as '{name}' and remove '{info.name}'?"
        ):
            self.merge_requested.emit(info.id, others[names.index(name)].id)

    def _delete(self) -> None:
        info = self._info(self.current_id)
        if info is not None and self._confirm(
            f"Delete the class '{info.name}'? Its labelled pixels become unlabeled in every image."
        ):
            self.delete_requested.emit(info.id)

    def _confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Please confirm", question)
        return answer == QMessageBox.StandardButton.Yes
