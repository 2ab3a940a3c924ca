"""Rasterising labelme / X-AnyLabeling shapes the way labelme's own ``shape_to_mask`` and
``shapes_to_label`` do (PIL ``ImageDraw``, outline and fill, pixel ``(x, y)`` centred at integer
coordinates).

Supported ``shape_type`` values: ``polygon`` (or none), ``rectangle`` (2 corner points, or the 4
corners X-AnyLabeling writes since v2.2), ``rotation`` / ``quadrilateral`` (X-AnyLabeling) and
``oriented_rectangle`` (labelme) as polygons through their points, ``circle`` (centre and a point
on the circle), ``line`` / ``linestrip`` (``line_width`` pixels wide, joints rounded), ``point``
(a disc of ``point_radius``) and ``mask`` (a PNG patch placed at its first point, rounded;
clipped to the image).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.formats._validate import check_points
from annotator.wording import plural

POLYGON_TYPES = ("polygon", "rotation", "quadrilateral", "oriented_rectangle")
SHAPE_TYPES = (*POLYGON_TYPES, "rectangle", "circle", "line", "linestrip", "point", "mask")
#: A mask patch may not have more pixels than this many times the image.
MAX_PATCH_FACTOR = 4


def shape_type(shape: dict[str, Any]) -> str:
    """The shape's ``shape_type``, ``polygon`` when missing or null."""
    kind = shape.get("shape_type")
    return kind if isinstance(kind, str) and kind else "polygon"


def shape_mask(
    shape: dict[str, Any], height: int, width: int, line_width: int = 10, point_radius: int = 5
) -> np.ndarray:
    """``[H, W]`` bool mask of one labelme shape (points ``[[x, y], ...]`` in pixels).
    :class:`FormatError` for unknown types, wrong point counts and bad coordinates."""
    kind = shape_type(shape)
    if kind not in SHAPE_TYPES:
        raise FormatError(f"shape type {kind!r} is not supported")
    points = check_points(shape.get("points", []), width, height, f"a {kind} shape")
    if kind == "mask":
        return mask_shape(shape.get("mask"), points, height, width)
    from PIL import Image, ImageDraw

    canvas = Image.new("1", (width, height), 0)
    _draw(ImageDraw.Draw(canvas), kind, [tuple(p) for p in points.tolist()], line_width, point_radius)  # fmt: skip
    return np.asarray(canvas, dtype=bool)


def _draw(draw: Any, kind: str, xy: list[tuple[float, float]], width: int, radius: int) -> None:
    count = len(xy)
    if kind == "rectangle" and count == 4 and _axis_aligned(xy):
        xy = [(min(x for x, _ in xy), min(y for _, y in xy)), (max(x for x, _ in xy), max(y for _, y in xy))]  # fmt: skip
        count = 2
    if kind == "rectangle" and count == 2:
        (x0, y0), (x1, y1) = xy
        draw.rectangle(((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))), outline=1, fill=1)
    elif kind in (*POLYGON_TYPES, "rectangle") and count >= 3 and (kind == "polygon" or count == 4):
        draw.polygon(xy, outline=1, fill=1)
    elif kind == "circle" and count == 2:
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        draw.ellipse(((cx - r, cy - r), (cx + r, cy + r)), outline=1, fill=1)
    elif kind == "line" and count == 2:
        draw.line(xy, fill=1, width=width)
    elif kind == "linestrip" and count >= 2:
        draw.line(xy, fill=1, width=width, joint="curve")
    elif kind == "point" and count == 1:
        (cx, cy) = xy[0]
        draw.ellipse(((cx - radius, cy - radius), (cx + radius, cy + radius)), outline=1, fill=1)
    else:
        raise FormatError(f"a {kind} shape with {plural(count, 'point')}")


def _axis_aligned(xy: list[tuple[float, float]]) -> bool:
    return len({x for x, _ in xy}) <= 2 and len({y for _, y in xy}) <= 2


def decode_png_mask(data: Any, limit: int, what: str = "a mask shape") -> np.ndarray:
    """``[h, w]`` bool of a base64 PNG (non-zero = inside); refuses patches over ``limit``
    pixels before decoding them."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, str):
        raise FormatError(f"{what} holds no base64 mask")
    try:
        raw = base64.b64decode(data, validate=False)
        with Image.open(io.BytesIO(raw)) as image:
            if image.width * image.height > limit:
                raise FormatError(f"{what} is {image.width} x {image.height}, larger than the image")  # fmt: skip
            return np.asarray(image.convert("L")) > 0
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:  # fmt: skip
        raise FormatError(f"{what} holds no readable mask ({error})") from error


def mask_shape(data: Any, points: np.ndarray, height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool of a labelme ``mask`` shape: the patch goes at the rounded first point;
    with integer corner points the patch is cropped to ``(x2 - x1 + 1) x (y2 - y1 + 1)`` as
    labelme does; parts outside the image are clipped."""
    if len(points) < 1:
        raise FormatError("a mask shape without points")
    patch = decode_png_mask(data, MAX_PATCH_FACTOR * height * width)
    corners = np.round(points).astype(np.int64)
    x1, y1 = (int(v) for v in corners[0])
    patch_h, patch_w = patch.shape
    if len(points) >= 2 and np.array_equal(points, np.trunc(points)):
        x2, y2 = (int(v) for v in corners[1])
        patch_h, patch_w = min(patch_h, max(y2 - y1 + 1, 0)), min(patch_w, max(x2 - x1 + 1, 0))
    out = np.zeros((height, width), bool)
    ys, ye = max(y1, 0), min(y1 + patch_h, height)
    xs, xe = max(x1, 0), min(x1 + patch_w, width)
    if ys < ye and xs < xe:
        out[ys:ye, xs:xe] = patch[ys - y1 : ye - y1, xs - x1 : xe - x1]
    return out
