"""Masks of COCO annotations (polygons, compressed or uncompressed RLE, boxes), each value
checked before pycocotools or numpy sees it. RLEs are decoded here with numpy after checking
that their runs add up to exactly the image's pixels (pycocotools' own decoder trusts them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.formats._validate import as_int, check_coordinates, flat_polygon
from annotator.wording import plural

#: Longest compressed RLE string accepted (a 10k x 10k checkerboard would need ~10^8 runs).
MAX_RLE_CHARS = 50_000_000


def has_mask(annotation: dict[str, Any]) -> bool:
    """Whether an annotation carries a segmentation (not only a box)."""
    segmentation = annotation.get("segmentation")
    return isinstance(segmentation, dict) or (isinstance(segmentation, list) and bool(segmentation))


def annotation_mask(
    annotation: dict[str, Any],
    height: int,
    width: int,
    boxes_as_masks: bool = False,
    notes: list[str] | None = None,
) -> np.ndarray:
    """``[H, W]`` bool mask of a COCO annotation: polygons, compressed or uncompressed RLE, or
    (``boxes_as_masks``) its ``bbox`` ``[x, y, w, h]`` as a filled rectangle. Polygons with fewer
    than 3 points are left out (a line in ``notes``); :class:`FormatError` if nothing is left."""
    what = f"annotation {annotation.get('id')!r}"
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        return _rle_mask(segmentation, height, width, what)
    if isinstance(segmentation, list) and segmentation:
        return _polygon_mask(segmentation, height, width, what, notes)
    if boxes_as_masks and annotation.get("bbox") is not None:
        return _box_mask(annotation["bbox"], height, width, what)
    raise FormatError(f"{what} has no mask (only a box); pass --boxes-as-masks to fill boxes")


def _polygon_mask(
    polygons: list, height: int, width: int, what: str, notes: list[str] | None
) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in polygons):
        polygons = [polygons]  # a single flat polygon, as some tools write it
    good: list[list[float]] = []
    reasons: list[str] = []
    for polygon in polygons:
        try:
            good.append(flat_polygon(polygon, width, height, what))
        except FormatError as error:
            reasons.append(str(error))
    if not good:
        raise FormatError(f"{reasons[0]}; no usable polygon left" if reasons else f"{what} has no polygon")  # fmt: skip
    if notes is not None:
        notes.extend(f"{reason}; that polygon was left out" for reason in reasons)
    rle = mask_utils.merge(mask_utils.frPyObjects(good, height, width))
    return mask_utils.decode(rle).astype(bool)


def _box_mask(box: Any, height: int, width: int, what: str) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not isinstance(box, list) or len(box) != 4:
        raise FormatError(f"{what}: bbox is not [x, y, w, h]")
    values = flat_polygon([*box, 0.0, 0.0], width, height, f"{what} bbox")[:4]
    if values[2] < 0 or values[3] < 0:
        raise FormatError(f"{what}: bbox has a negative size")
    corners = np.array([[values[0], values[1]], [values[0] + values[2], values[1] + values[3]]])
    check_coordinates(corners, width, height, f"{what} bbox")
    rle = mask_utils.frPyObjects(np.array([values], np.float64), height, width)
    return mask_utils.decode(rle)[..., 0].astype(bool)


def _rle_mask(rle: dict[str, Any], height: int, width: int, what: str) -> np.ndarray:
    size = rle.get("size")
    if not isinstance(size, list) or len(size) != 2:
        raise FormatError(f"{what}: RLE size is {size!r}, not [height, width]")
    h, w = (as_int(v, f"{what} RLE size") for v in size)
    if (h, w) != (height, width):
        raise FormatError(f"{what}: its RLE is {w} x {h}, the image is {width} x {height}")
    counts = rle.get("counts")
    if isinstance(counts, str | bytes):
        runs = decode_compressed_counts(counts, what)
    elif isinstance(counts, list):
        runs = [as_int(v, f"{what} RLE count", 0, height * width) for v in counts]
    else:
        raise FormatError(f"{what}: RLE counts are {type(counts).__name__}, not a list or string")
    return runs_to_mask(runs, height, width, what)


def runs_to_mask(runs: list[int], height: int, width: int, what: str) -> np.ndarray:
    """``[H, W]`` bool mask of COCO RLE runs (column-major, starting with a background run)."""
    counts = np.asarray(runs, dtype=np.int64)
    if (counts < 0).any() or int(counts.sum()) != height * width:
        raise FormatError(
            f"{what}: its RLE runs cover {plural(int(counts.sum()), 'pixel')}, the image has {height * width}"
        )
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()


def decode_compressed_counts(counts: str | bytes, what: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string: 6-bit groups (``char - 48``), 5 value bits
    each, bit 0x20 = more groups follow, bit 0x10 of the last group = negative; from the third
    run on, each value is stored as the difference to the run two before."""
    text = counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts
    if len(text) > MAX_RLE_CHARS:
        raise FormatError(f"{what}: its RLE string is too long ({len(text)} characters)")
    runs: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text) or shift > 60:
                raise FormatError(f"{what}: its RLE string is cut short or damaged")
            group = ord(text[position]) - 48
            if not 0 <= group < 64:
                raise FormatError(f"{what}: its RLE string holds {text[position]!r}")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position, shift = position + 1, shift + 5
            if not more and group & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs
