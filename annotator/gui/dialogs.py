"""Dialogs: keyboard shortcuts, settings, export and import."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotator.gui._settings import DEVICES, AppSettings


class ShortcutsDialog(QDialog):
    """Every shortcut of the app, generated from the actions themselves."""

    def __init__(self, rows: Sequence[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Key", "Action"])
        for row, (key, text) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(key))
            table.setItem(row, 1, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # a list to read
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(560, 560)


def _add_ok_cancel(dialog: QDialog, form: QFormLayout) -> None:
    """Lay out ``form`` above OK / Cancel buttons that accept or reject ``dialog``."""
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addWidget(buttons)


def _path_row(edit: QLineEdit, pick: callable) -> QWidget:  # type: ignore[valid-type]
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(pick)
    layout.addWidget(button)
    return row


def proposer_widgets(settings: AppSettings) -> tuple[QComboBox, QSpinBox, QComboBox]:
    """Proposer (dense | zegformer), segments per image, segment score (pool | crop)."""
    from annotator.engine.proposers import SEGMENT_SCORES, list_proposers

    proposer = QComboBox()
    proposer.addItems(list_proposers())
    proposer.setCurrentText(settings.proposer)
    proposer.setToolTip("zegformer: class-agnostic segments named by CLIP, accepted whole")
    segments = QSpinBox()
    segments.setRange(2, 64)
    segments.setValue(settings.segments)
    score = QComboBox()
    score.addItems(list(SEGMENT_SCORES))
    score.setCurrentText(settings.segment_score)
    return proposer, segments, score


PRESET_HEAD = "the protocol's"


def _preset_box(current: str) -> QComboBox:
    """Presets by name with what they are for; the item data is the preset name."""
    from annotator.engine.presets import list_presets

    box = QComboBox()
    for preset in list_presets():
        box.addItem(f"{preset.name}: {preset.summary}", preset.name)
        box.setItemData(
            box.count() - 1, f"published: {preset.published}", Qt.ItemDataRole.ToolTipRole
        )
    index = box.findData(current)
    box.setCurrentIndex(max(index, 0))
    return box


class SettingsDialog(QDialog):
    """Model, pretrained tag or local file, head, device, threads. Saved by the caller."""

    def __init__(
        self, settings: AppSettings, heads: Sequence[str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.model = QLineEdit(settings.model)
        self.pretrained = QLineEdit(settings.pretrained)
        self.pretrained.setPlaceholderText("e.g. openai, or none for random weights")
        self.pretrained.setToolTip(
            "open_clip pretrained tag ('annotator models list' shows them). 'none' = random "
            "weights: masks are meaningless, for testing the workflow"
        )
        self.weights_file = QLineEdit(settings.weights_file)
        self.weights_file.setPlaceholderText("optional: a local .safetensors / .bin / .pt file")
        self.preset = _preset_box(settings.preset)
        self.head = QComboBox()
        self.head.addItems([PRESET_HEAD, *heads])
        self.head.setCurrentText(settings.head or PRESET_HEAD)
        self.preset.currentIndexChanged.connect(lambda _: self.head.setCurrentText(PRESET_HEAD))
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device)
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("default")
        self.threads.setValue(settings.threads)
        self.use_model = QCheckBox("Make proposals with the zero-shot model")
        self.use_model.setChecked(settings.use_model)
        self.prefetch = QSpinBox()
        self.prefetch.setRange(0, 8)
        self.prefetch.setValue(settings.prefetch)
        self.proposer, self.segments, self.segment_score = proposer_widgets(settings)
        self._settings = settings
        self._build()

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Pretrained tag", self.pretrained)
        form.addRow("Weights file", _path_row(self.weights_file, self._pick))
        form.addRow("Protocol", self.preset)
        form.addRow("Head", self.head)
        form.addRow("Device", self.device)
        form.addRow("CPU threads", self.threads)
        form.addRow("Prefetch images", self.prefetch)
        form.addRow("Proposer", self.proposer)
        form.addRow("Segments", self.segments)
        form.addRow("Segment score", self.segment_score)
        form.addRow("", self.use_model)
        _add_ok_cancel(self, form)

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Model weights", "", "Weights (*.safetensors *.bin *.pt *.pth);;All files (*)"
        )
        if path:
            self.weights_file.setText(path)

    def result_settings(self) -> AppSettings:
        s = self._settings
        s.model = self.model.text().strip() or s.model
        s.pretrained = self.pretrained.text().strip()
        s.weights_file = self.weights_file.text().strip()
        s.preset = self.preset.currentData()
        s.head = "" if self.head.currentText() == PRESET_HEAD else self.head.currentText()
        s.device = self.device.currentText()
        s.threads = self.threads.value()
        s.prefetch = self.prefetch.value()
        s.use_model = self.use_model.isChecked()
        s.proposer = self.proposer.currentText()
        s.segments = self.segments.value()
        s.segment_score = self.segment_score.currentText()
        return s


class TransferDialog(QDialog):
    """Export or import: format, folder or file, and the format's options."""

    def __init__(self, export: bool, formats: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.export = export
        self.setWindowTitle("Export labels" if export else "Import labels")
        self.format = QComboBox()
        self.format.addItems(list(formats))
        self.path = QLineEdit()
        self.path.setPlaceholderText("output folder" if export else "folder or file to import")
        self.polygons = QCheckBox("COCO: polygons instead of RLE (lossy)")
        self.reviewed_only = QCheckBox("Only reviewed images")
        self.split = QDoubleSpinBox()
        self.split.setRange(0.0, 1.0)
        self.split.setSingleStep(0.05)
        self.split.setValue(1.0)
        self.overwrite = QCheckBox("Replace labels I already have (otherwise skip those images)")
        self.class_names = QLineEdit()
        self.class_names.setPlaceholderText(
            "index-mask formats: class names by index, comma-separated"
        )
        self.fill_unlabeled = QLineEdit()
        self.fill_unlabeled.setPlaceholderText(
            "class for pixels no shape covers, e.g. _background_"
        )
        self.as_edited = QCheckBox("Mark imported labels edited (default: reviewed, ground truth)")
        self._build()

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Output" if self.export else "Source", _path_row(self.path, self._pick))
        if self.export:
            form.addRow("Train fraction", self.split)
            form.addRow("", self.polygons)
            form.addRow("", self.reviewed_only)
        else:
            form.addRow("Class names", self.class_names)
            form.addRow("Fill unlabelled", self.fill_unlabeled)
            form.addRow("", self.overwrite)
            form.addRow("", self.as_edited)
        _add_ok_cancel(self, form)

    def _pick(self) -> None:
        if self.export or self.format.currentText() in ("voc", "masks", "labelme", "isat"):
            path = QFileDialog.getExistingDirectory(self, self.windowTitle())
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.windowTitle(), "", "JSON (*.json)")
        if path:
            self.path.setText(path)

    def options(self) -> object:
        from annotator.formats import ExportOptions, ImportOptions

        if self.export:
            statuses = ("reviewed",) if self.reviewed_only.isChecked() else None
            return ExportOptions(
                statuses=statuses, split=self.split.value(), polygons=self.polygons.isChecked()
            )
        names = tuple(n.strip() for n in self.class_names.text().split(",") if n.strip())
        return ImportOptions(
            overwrite=self.overwrite.isChecked(),
            class_names=names or None,
            status="edited" if self.as_edited.isChecked() else None,
            fill_unlabeled=self.fill_unlabeled.text().strip() or None,
        )
