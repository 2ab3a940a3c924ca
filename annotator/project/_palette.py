"""Default class colours: the Pascal-VOC colour map, skipping its black background entry."""

from __future__ import annotations


def voc_color(index: int) -> tuple[int, int, int]:
    """Colour ``index`` of the standard Pascal-VOC colour map (0 is black, 1 dark red, ...)."""
    red = green = blue = 0
    value = index
    for shift in range(7, -1, -1):
        red |= ((value >> 0) & 1) << shift
        green |= ((value >> 1) & 1) << shift
        blue |= ((value >> 2) & 1) << shift
        value >>= 3
    return red, green, blue


def voc_palette(size: int = 256) -> list[tuple[int, int, int]]:
    """The first ``size`` colours of the VOC colour map."""
    return [voc_color(index) for index in range(size)]


def default_class_color(class_id: int) -> tuple[int, int, int]:
    """A distinct colour for a new class: VOC colour ``class_id + 1`` (never black)."""
    return voc_color(class_id % 255 + 1)
