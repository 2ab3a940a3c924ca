"""The export dialog: format, output folder (the last one is remembered), and only the options
the chosen format has, each explained."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QFileDialog, QFormLayout, QLabel, QWidget

from annotator.gui.dialogs import TransferDialog, _add_ok_cancel, _path_row

#: Which format uses which option (the others are hidden).
SPLIT_FORMATS = ("coco", "voc")
COCO_ONLY = ("coco",)

SPLIT_HELP = (
    "Train fraction: the share of the exported images listed as the training set; the rest "
    "form the validation set (COCO: two files, *_train.json and *_val.json; VOC: train.txt "
    "and val.txt). 1.00 puts every image in train. The split is the same every time."
)


class ExportDialog(TransferDialog):
    """Export settings; ``start_folder`` (the last export's folder) fills the output path."""

    def __init__(
        self, formats: Sequence[str], start_folder: str = "", parent: QWidget | None = None
    ) -> None:
        self.split_help = QLabel(SPLIT_HELP)
        self.split_help.setWordWrap(True)
        self.split_help.setStyleSheet("color: palette(mid);")
        super().__init__(True, formats, parent)
        self.path.setText(start_folder)
        self.format.currentTextChanged.connect(self._show_options)
        self._show_options(self.format.currentText())
        self.resize(520, self.sizeHint().height())

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Output folder", _path_row(self.path, self._pick))
        self.split_label = QLabel("Train fraction")
        self.split.setToolTip(SPLIT_HELP)
        form.addRow(self.split_label, self.split)
        form.addRow("", self.split_help)
        form.addRow("", self.polygons)
        form.addRow("", self.reviewed_only)
        self.polygons.setToolTip("COCO stores masks as RLE (exact); polygons fill holes")
        _add_ok_cancel(self, form)

    def _show_options(self, fmt: str) -> None:
        """Show the options ``fmt`` has; hide the others (and reset them so none applies)."""
        has_split = fmt in SPLIT_FORMATS
        for widget in (self.split_label, self.split, self.split_help):
            widget.setVisible(has_split)
        if not has_split:
            self.split.setValue(1.0)
        self.polygons.setVisible(fmt in COCO_ONLY)
        if fmt not in COCO_ONLY:
            self.polygons.setChecked(False)

    def _pick(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.windowTitle(), self.path.text())
        if folder:
            self.path.setText(folder)
