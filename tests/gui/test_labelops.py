"""Qt-free tool logic: brush, polygon, fills, regions, undo diffs."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.gui._document import TILE, LabelDocument
from annotator.gui._labelops import (
    Rect,
    connected_region,
    empty_labels,
    outline,
    polygon_mask,
    similar_colour_region,
    stroke_mask,
)


def test_stroke_mask_is_a_round_capsule() -> None:
    rect, mask = stroke_mask((10.5, 10.5), (30.5, 10.5), 3, 64, 64)
    full = np.zeros((64, 64), bool)
    full[rect.slices] = mask
    assert full[10, 10] and full[10, 30] and full[10, 20]
    assert full[13, 20] and not full[15, 20]
    assert not full[10, 35] and not full[10, 5]
    assert full[10, 7] and not full[7, 7]  # round cap, not a square


def test_stroke_outside_the_image_is_none() -> None:
    assert stroke_mask((-50, -50), (-40, -40), 3, 64, 64) is None


def test_polygon_mask_fills_a_square_including_its_corner_pixels() -> None:
    # Clicks land on pixel centres; like labelme, the polygon's outline pixels belong to it.
    rect, mask = polygon_mask([(10.5, 10.5), (19.5, 10.5), (19.5, 19.5), (10.5, 19.5)], 64, 64)
    full = np.zeros((64, 64), bool)
    full[rect.slices] = mask
    assert full[10:20, 10:20].all()
    assert full.sum() == 100


def test_connected_region_stops_at_other_values() -> None:
    values = np.zeros((20, 20), np.uint8)
    values[:, 10] = 1  # a wall splits the zeros in two
    rect, mask = connected_region(values, 2, 2)
    assert rect == Rect(0, 0, 10, 20)
    assert mask.all()
    rect, mask = connected_region(values, 10, 5)
    assert rect == Rect(10, 0, 11, 20)


def test_similar_colour_region_respects_tolerance() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    image[:, 5:] = 200
    image[0, 0] = 10
    rect, mask = similar_colour_region(image, 1, 1, tolerance=12)
    assert rect == Rect(0, 0, 5, 10) and mask.sum() == 50
    rect, mask = similar_colour_region(image, 1, 1, tolerance=5)
    assert mask.sum() == 49


def test_outline_marks_borders_only() -> None:
    values = np.zeros((8, 8), np.uint8)
    values[2:6, 2:6] = 1
    edge = outline(values)
    assert edge[2, 2] and edge[1, 2] and not edge[4, 4] and not edge[0, 0]


def test_undo_redo_restores_exact_pixels() -> None:
    doc = LabelDocument(empty_labels(600, 700))
    original = doc.labels.copy()
    rect, mask = stroke_mask((5, 5), (650, 550), 10, 700, 600)
    doc.apply("Brush", rect, mask, 3)
    painted = doc.labels.copy()
    assert (painted == 3).sum() == mask.sum()
    assert doc.undo() is not None
    assert np.array_equal(doc.labels, original)
    assert doc.redo() is not None
    assert np.array_equal(doc.labels, painted)


def test_undo_stores_only_touched_tiles() -> None:
    doc = LabelDocument(empty_labels(9000, 12000))
    rect, mask = stroke_mask((100, 100), (110, 100), 5, 12000, 9000)
    doc.apply("Brush", rect, mask, 1)
    assert doc.undo_bytes == 2 * TILE * TILE


def test_undo_memory_bound_forgets_oldest() -> None:
    doc = LabelDocument(empty_labels(TILE, TILE), max_bytes=3 * 2 * TILE * TILE)
    for value in range(6):
        doc.apply("Fill", Rect(0, 0, TILE, TILE), np.ones((TILE, TILE), bool), value)
    assert doc.undo_bytes <= 3 * 2 * TILE * TILE
    steps = 0
    while doc.undo() is not None:
        steps += 1
    assert steps == 3 and (doc.labels == 2).all()


def test_new_edit_clears_redo_and_listeners_hear_rects() -> None:
    doc = LabelDocument(empty_labels(32, 32))
    heard: list[Rect] = []
    doc.add_listener(heard.append)
    doc.apply("a", Rect(0, 0, 4, 4), np.ones((4, 4), bool), 1)
    doc.undo()
    doc.apply("b", Rect(8, 8, 12, 12), np.ones((4, 4), bool), 2)
    assert not doc.can_redo
    assert heard[-1] == Rect(8, 8, 12, 12)


def test_write_outside_an_edit_is_refused() -> None:
    doc = LabelDocument(empty_labels(8, 8))
    with pytest.raises(RuntimeError):
        doc.write(Rect(0, 0, 2, 2), np.ones((2, 2), bool), 1)


def test_undo_of_an_edit_starting_inside_a_tile() -> None:
    doc = LabelDocument(empty_labels(1000, 1000))
    before = doc.labels.copy()
    mask = np.zeros((300, 300), bool)
    mask[:20, :20] = True  # in tile (1, 1), which starts before the rect
    mask[250:, 250:] = True  # in tile (2, 2)
    doc.apply("Fill", Rect(300, 300, 600, 600), mask, 4)
    assert (doc.labels[550:600, 550:600] == 4).all() and (doc.labels[300:320, 300:320] == 4).all()
    assert doc.undo_bytes == 2 * 2 * TILE * TILE  # tiles (1, 1) and (2, 2), before and after
    doc.undo()
    assert np.array_equal(doc.labels, before)


def test_settled_tiles_undo_like_the_rest() -> None:
    doc = LabelDocument(empty_labels(3 * TILE, 2 * TILE))
    doc.begin("Accept")
    for band in range(3):
        rect = Rect(0, band * TILE, 2 * TILE, (band + 1) * TILE)
        doc.write(rect, np.ones((TILE, 2 * TILE), bool), band)
        doc.settle(rect.y1)
    edit = doc.end()
    assert edit is not None and len(edit.patches) == 6
    doc.undo()
    assert (doc.labels == doc.unlabeled).all()
    doc.redo()
    assert (doc.labels[2 * TILE :] == 2).all()
