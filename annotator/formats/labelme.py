"""labelme JSON import: one ``.json`` per image with polygon, rectangle, circle and mask shapes.

Shapes are painted in file order (later shapes on top), the way labelme's own exporters do.
Line, line-strip and point shapes mark no area and are skipped; label ``__ignore__`` paints
"unlabeled". The image is found from ``imagePath`` (relative to the JSON file), else from the
JSON file's own name.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.formats._common import (
    DEFAULT_IMPORT,
    ImageMatcher,
    ImportOptions,
    TransferReport,
    check_stop,
    resolve_classes,
    store_imported,
)
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import ImageRecord, Project

IGNORE_LABEL = "__ignore__"
_AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")


def shape_mask(shape: dict[str, Any], height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool mask of one labelme shape (x, y points in pixel coordinates)."""
    from PIL import Image, ImageDraw

    kind = shape.get("shape_type") or "polygon"
    points = [tuple(map(float, p)) for p in shape.get("points", [])]
    if kind == "mask":
        return _mask_shape(shape, points, height, width)
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon" and len(points) >= 3:
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle" and len(points) == 2:
        (x1, y1), (x2, y2) = points
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=1, fill=1)
    elif kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    else:
        raise FormatError(f"a {kind} shape with {len(points)} points is not a region")
    return np.asarray(canvas, dtype=bool)


def _mask_shape(shape: dict[str, Any], points: list, height: int, width: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as image:
            local = np.asarray(image.convert("L")) > 0
    except Exception as error:
        raise FormatError(f"a mask shape holds no readable mask ({error})") from error
    x, y = (int(v) for v in points[0])
    out = np.zeros((height, width), bool)
    h, w = min(local.shape[0], height - y), min(local.shape[1], width - x)
    out[y : y + h, x : x + w] = local[:h, :w]
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise FormatError(f"cannot read it ({error})") from error
    if not isinstance(document, dict) or "shapes" not in document:
        raise FormatError("not a labelme file (no 'shapes')")
    return document


def _find_record(
    matcher: ImageMatcher, project: Project, path: Path, document: dict
) -> ImageRecord | None:
    image_path = document.get("imagePath")
    if image_path:
        resolved = (path.parent / image_path).resolve()
        if resolved.is_relative_to(project.root):
            found = matcher.find(resolved.relative_to(project.root).as_posix())
            if found is not None:
                return found
        found = matcher.find(str(image_path))
        if found is not None:
            return found
    return matcher.find(path.stem)  # fmt: skip


def _label_map(
    document: dict, record: ImageRecord, ids: dict[str, int], project: Project
) -> np.ndarray:
    height, width = record.height, record.width
    declared = (document.get("imageHeight"), document.get("imageWidth"))
    if None not in declared and tuple(map(int, declared)) != (height, width):
        raise FormatError(
            f"the file says {declared[1]} x {declared[0]}, the image is {width} x {height}"
        )
    label_map = np.full((height, width), project.unlabeled_value, project.label_dtype)
    for shape in document["shapes"]:
        if (shape.get("shape_type") or "polygon") not in _AREA_SHAPES or not shape.get("label"):
            continue
        value = project.unlabeled_value if shape["label"] == IGNORE_LABEL else ids[shape["label"]]
        label_map[shape_mask(shape, height, width)] = value
    return label_map  # fmt: skip


def import_labelme(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import every labelme ``*.json`` under ``source`` (a folder or one file)."""
    source = Path(source)
    files = [source] if source.is_file() else sorted(source.rglob("*.json"))
    matcher, report = ImageMatcher(project), TransferReport()
    for done, path in enumerate(files):
        check_stop(should_stop)
        try:
            _import_file(project, matcher, path, options, report)
        except FormatError as error:
            report.skipped.append(f"{path}: {error}")
        yield Progress(done + 1, len(files), path.name)
    return report  # fmt: skip


def _import_file(
    project: Project,
    matcher: ImageMatcher,
    path: Path,
    options: ImportOptions,
    report: TransferReport,
) -> None:
    document = _read(path)
    record = _find_record(matcher, project, path, document)
    if record is None:
        raise FormatError(f"no image in the project for imagePath {document.get('imagePath')!r}")
    names = {s["label"] for s in document["shapes"] if s.get("label") and s["label"] != IGNORE_LABEL
             and (s.get("shape_type") or "polygon") in _AREA_SHAPES}  # fmt: skip
    ids = resolve_classes(project, sorted(names))
    store_imported(project, record, _label_map(document, record, ids, project), options, report)
