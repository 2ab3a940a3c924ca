"""The canvas: tiled view (``view``), tile drawing (``tiles``) and tools (``tools``)."""

from annotator.gui.canvas.view import CanvasView

__all__ = ["CanvasView"]
