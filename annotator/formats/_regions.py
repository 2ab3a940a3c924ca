"""Connected regions of a label map and their COCO run-length encodings, for the whole image at
once (one pass over the pixels instead of one full-size mask per region)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """One region: its class index, ``bbox`` ``[x, y, w, h]`` in pixels, and pixel ``area``."""

    class_index: int
    bbox: list[int]
    area: int


_EIGHT_CONNECTED = np.ones((3, 3), bool)


def find_regions(indices: np.ndarray, per_region: bool) -> tuple[np.ndarray, list[Region]]:
    """Label ``[H, W]`` class indices (-1 = unlabeled) with region numbers.

    Returns an ``[H, W]`` int32 map (0 = unlabeled, ``r + 1`` = ``regions[r]``) and the regions:
    8-connected regions of each class, or one region per class when ``per_region`` is False.
    """
    from scipy import ndimage

    region_map = np.zeros(indices.shape, np.int32)
    classes: list[int] = []
    present = np.flatnonzero(np.bincount(indices.ravel() + 1)[1:])  # faster than np.unique
    for index in present:
        inside = indices == index
        if per_region:
            components, count = ndimage.label(inside, structure=_EIGHT_CONNECTED)
            region_map[inside] = components[inside] + len(classes)
        else:
            region_map[inside], count = len(classes) + 1, 1
        classes += [int(index)] * count
    areas = np.bincount(region_map.ravel(), minlength=len(classes) + 1)[1:]
    boxes = ndimage.find_objects(region_map, max_label=len(classes))
    regions = [
        Region(c, [b[1].start, b[0].start, b[1].stop - b[1].start, b[0].stop - b[0].start], int(a))
        for c, b, a in zip(classes, boxes, areas, strict=True)
    ]
    return region_map, regions


def region_run_lengths(region_map: np.ndarray, count: int) -> list[list[int]]:
    """Uncompressed COCO RLE counts (column-major, starting with a background run) of regions
    ``1..count`` of an ``[H, W]`` region map."""
    flat = region_map.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [flat.size]))
    ids = flat[starts]
    keep = ids > 0
    starts, ends, ids = starts[keep], ends[keep], ids[keep]
    order = np.argsort(ids, kind="stable")  # each region's runs, still in scan order
    starts, ends, ids = starts[order], ends[order], ids[order]
    first = np.ones(len(ids), bool)
    first[1:] = ids[1:] != ids[:-1]
    previous_end = np.concatenate(([0], ends[:-1]))
    gaps = starts - np.where(first, 0, previous_end)
    pairs = np.stack([gaps, ends - starts], axis=1)
    bounds = np.flatnonzero(first)
    counts: list[list[int]] = []
    for number, (lo, hi) in enumerate(zip(bounds, [*bounds[1:], len(ids)], strict=True), 1):
        assert ids[lo] == number  # every region 1..count has at least one run
        runs = pairs[lo:hi].ravel().tolist()
        counts.append([*runs, int(flat.size - ends[hi - 1])])
    return counts[:count]


def encode_regions(region_map: np.ndarray, count: int) -> list[dict[str, object]]:
    """Compressed COCO RLEs (``counts`` as str) of regions ``1..count`` of a region map."""
    from pycocotools import mask as mask_utils

    if count == 0:
        return []
    height, width = region_map.shape
    raw = [{"size": [height, width], "counts": c} for c in region_run_lengths(region_map, count)]
    encoded = mask_utils.frPyObjects(raw, height, width)
    return [{"size": [height, width], "counts": rle["counts"].decode("ascii")} for rle in encoded]
