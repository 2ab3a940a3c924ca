"""Checks every imported value before it reaches numpy, PIL or pycocotools.

Files from elsewhere are untrusted: a NaN coordinate grows pycocotools without bound, a coordinate
of 1e12 crashes it, a declared size of 200000 x 200000 allocates tens of gigabytes. Everything
here raises :class:`annotator.errors.FormatError` with a message naming the bad value, so the
importers skip one file or one shape with its reason and carry on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.wording import plural

#: Coordinates may lie this many image sizes outside the image (clicks past the border are
#: common); anything farther is a broken file, not a drawing.
OUTSIDE_MARGIN = 1.0
#: At most this many points in one shape (a full outline of a 10k x 10k mask is ~40k points).
MAX_POINTS = 1_000_000
#: JSON files larger than this are refused before parsing.
MAX_JSON_BYTES = 2_000_000_000


def read_json_file(path: Path, what: str) -> Any:
    """The parsed JSON of ``path``; :class:`FormatError` naming ``what`` if it cannot be read."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise FormatError(f"{path} is larger than {MAX_JSON_BYTES // 10**9} GB")
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise FormatError(f"cannot read the {what} {path}: {error}") from error


def as_int(value: Any, what: str, low: int = 0, high: int = 2**31 - 1) -> int:
    """``value`` as an int in ``[low, high]`` (integral floats accepted, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{what} is {value!r}, not a number")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise FormatError(f"{what} is {value!r}, not a whole number")
    if not low <= int(value) <= high:
        raise FormatError(f"{what} is {value!r}, outside {low}..{high}")
    return int(value)


def id_key(value: Any, what: str) -> str:
    """A COCO-style id (int, integral float or non-empty string) as a dictionary key, so that
    ``7``, ``7.0`` and ``"7"`` name the same thing."""
    if isinstance(value, str) and 0 < len(value) <= 500:
        return value.strip()
    return str(as_int(value, what, low=-(2**63), high=2**63 - 1))


def as_text(value: Any, what: str, limit: int = 1000) -> str:
    """A non-empty string of at most ``limit`` characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise FormatError(f"{what} is {_short(value)}, not a name")
    return value.strip()


def check_points(values: Any, width: int, height: int, what: str) -> np.ndarray:
    """``values`` (``[[x, y], ...]``) as a float64 ``[N, 2]`` array of finite pixel coordinates
    no farther than :data:`OUTSIDE_MARGIN` image sizes outside a ``width`` x ``height`` image."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise FormatError(f"{what}: points are {_short(values)}, not a list")
    if len(values) > MAX_POINTS:
        raise FormatError(f"{what} has {len(values)} points (at most {MAX_POINTS})")
    try:
        points = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:
        raise FormatError(f"{what}: points are not [x, y] number pairs ({error})") from error
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise FormatError(f"{what}: points are not [x, y] pairs (shape {points.shape})")
    check_coordinates(points, width, height, what)
    return points


def check_coordinates(points: np.ndarray, width: int, height: int, what: str) -> None:
    """Raise unless every ``[..., 2]`` (x, y) value is finite and near the image."""
    if not np.isfinite(points).all():
        raise FormatError(f"{what} has a coordinate that is not a finite number")
    margin = OUTSIDE_MARGIN * max(width, height)
    xs, ys = points[..., 0], points[..., 1]
    if (
        xs.min() < -margin
        or ys.min() < -margin
        or xs.max() > width + margin
        or ys.max() > height + margin
    ):
        raise FormatError(
            f"{what} has points far outside the {width} x {height} image "
            f"(x {xs.min():g}..{xs.max():g}, y {ys.min():g}..{ys.max():g})"
        )  # fmt: skip


def flat_polygon(values: Any, width: int, height: int, what: str) -> list[float]:
    """A COCO polygon ``[x0, y0, x1, y1, ...]`` checked: even length, at least 3 points, every
    value finite and near the image. Returns plain floats (safe to hand to pycocotools)."""
    if not isinstance(values, list):
        raise FormatError(f"{what}: a polygon is {_short(values)}, not a list of numbers")
    if len(values) % 2 or len(values) < 6:
        raise FormatError(f"{what}: a polygon with {plural(len(values), 'coordinate')} (needs 3 points, 6 numbers)")  # fmt: skip
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise FormatError(f"{what}: a polygon holds values that are not numbers")
    array = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    check_coordinates(array, width, height, what)
    return array.ravel().tolist()


def check_declared_size(declared_width: Any, declared_height: Any, width: int, height: int) -> None:
    """Compare a file's declared image size (either may be ``None`` = not given) with the real
    image's ``width`` x ``height`` from its header, before anything is allocated."""
    if declared_width is None and declared_height is None:
        return
    w = as_int(declared_width, "the declared width") if declared_width is not None else width
    h = as_int(declared_height, "the declared height") if declared_height is not None else height
    if (w, h) != (width, height):
        raise FormatError(f"the file says the image is {w} x {h}, the image is {width} x {height}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
