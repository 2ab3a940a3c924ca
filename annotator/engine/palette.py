"""Class colours: the Pascal-VOC colour map, so proposals look like every other VOC mask."""

from __future__ import annotations


def voc_colour(index: int) -> tuple[int, int, int]:
    """RGB of ``index`` in the VOC colour map (0 is black, 1 dark red, 2 green, ...)."""
    red = green = blue = 0
    value = index
    for shift in range(7, -1, -1):
        red |= (value & 1) << shift
        green |= ((value >> 1) & 1) << shift
        blue |= ((value >> 2) & 1) << shift
        value >>= 3
    return red, green, blue


def class_colours(count: int) -> list[tuple[int, int, int]]:
    """Colours for ``count`` classes: VOC colours 1..count (0, black, is kept for background)."""
    return [voc_colour(index + 1) for index in range(count)]
