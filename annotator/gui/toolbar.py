"""The main toolbar's look: SVG icons (``resources/icons/toolbar``) with the text under them,
tooltips that name the shortcut, and the fill tool's tolerance next to it."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QSpinBox, QToolBar

#: The stroke colour the icon files are drawn in; replaced by the theme's text colour.
ICON_INK = "#4a5568"
ICON_SIZE = 22

#: Action key -> icon file stem (actions without an entry keep their text only).
ICONS = {
    "open": "open", "export": "export", "tool_brush": "brush", "tool_eraser": "eraser",
    "tool_polygon": "polygon", "tool_fill": "fill", "tool_accept": "accept_region",
    "tool_reassign": "reassign", "tool_pick": "pick", "propose": "propose",
    "propose_all": "propose_all", "accept": "accept", "stop": "stop", "reviewed": "reviewed",
}  # fmt: skip

#: Short labels under the icons (the menus keep the full text).
SHORT_TEXT = {
    "open": "Open", "export": "Export", "tool_accept": "Accept region", "propose_all": "Propose all",
    "accept": "Accept", "stop": "Stop", "reviewed": "Reviewed",
}  # fmt: skip


#: What the non-tool actions do (the tools bring their own help text).
DESCRIPTIONS = {
    "open": "open a folder of images as a project",
    "export": "write the labels as COCO, VOC, labelme or index masks",
    "propose": "ask the zero-shot model for masks of this image",
    "propose_all": "propose every image of the folder in the background",
    "accept": "copy the proposal into every unlabelled pixel (your labels win)",
    "stop": "stop proposing (and any propose-all run)",
    "reviewed": "mark this image reviewed and go to the next one",
}


def icon_path(stem: str) -> Any:
    return files("annotator.resources") / "icons" / "toolbar" / f"{stem}.svg"


def load_icon(stem: str, palette: QPalette | None = None) -> QIcon:
    """The toolbar icon ``stem``, its strokes in the theme's text colour (readable on light
    and dark themes alike)."""
    palette = palette or QApplication.palette()
    ink = palette.color(QPalette.ColorRole.WindowText).name()
    svg = icon_path(stem).read_text(encoding="utf-8").replace(ICON_INK, ink)
    icon = QIcon()
    for scale in (1, 2):
        pixmap = QPixmap(QSize(ICON_SIZE, ICON_SIZE) * scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        if pixmap.loadFromData(svg.encode("utf-8"), "SVG"):
            pixmap.setDevicePixelRatio(scale)
            icon.addPixmap(pixmap)
    return icon


def tooltip(action: QAction, description: str = "") -> str:
    """``"Brush (B): paint the current class"``: the action's text, its shortcut, what it does."""
    text = action.text().replace("&", "").rstrip("…").rstrip(".")
    key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    tip = f"{text} ({key})" if key else text
    return f"{tip}: {description}" if description else tip


def style_toolbar(toolbar: QToolBar, actions: dict[str, QAction]) -> None:
    """Icons with text under them, and a shortcut in every tooltip (keeping any description
    an action's tooltip already had after a colon)."""
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
    toolbar.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
    for key, action in actions.items():
        if key in ICONS and icon_path(ICONS[key]).is_file():
            action.setIcon(load_icon(ICONS[key]))
        if key in SHORT_TEXT:
            action.setIconText(SHORT_TEXT[key])
        old = action.toolTip()
        description = old.split(": ", 1)[1] if ": " in old else DESCRIPTIONS.get(key, "")
        action.setToolTip(tooltip(action, description))


def add_fill_tolerance(toolbar: QToolBar, after: QAction, canvas: Any) -> QSpinBox:
    """A spin box next to the Fill tool setting ``canvas.fill_tolerance`` (0-255 per channel)."""
    box = QSpinBox()
    box.setRange(0, 255)
    box.setValue(int(canvas.fill_tolerance))
    box.setPrefix("tol ")
    box.setToolTip(
        "Fill tolerance: how much (0-255 per colour channel) a pixel may differ from the "
        "clicked one and still be filled"
    )
    box.valueChanged.connect(lambda value: setattr(canvas, "fill_tolerance", int(value)))
    actions = toolbar.actions()
    index = actions.index(after) + 1 if after in actions else len(actions)
    before = actions[index] if index < len(actions) else None
    widget_action = toolbar.insertWidget(before, box) if before else toolbar.addWidget(box)
    widget_action.setObjectName("fill_tolerance")
    return box
