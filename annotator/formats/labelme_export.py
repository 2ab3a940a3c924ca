"""labelme JSON export, so labels can go back to labelme or X-AnyLabeling.

For each image, ``<out>/<relpath without suffix>.json`` and the image itself (upright) at
``<out>/<relpath>``; ``imagePath`` is the image's file name, ``imageData`` null. Each connected
region of a class becomes one shape: a ``polygon`` through its outline when labelme's own
rasterisation of that polygon gives back exactly the region's pixels, otherwise (holes, one- or
two-pixel regions, thin diagonal parts) a ``mask`` shape (its bounding box corners, inclusive, and
a PNG patch), which labelme also reads exactly. The file's ``annotator`` key keeps the status and
the colours, synonyms and novel flags of its classes for a round trip.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from annotator.errors import ImageReadError
from annotator.formats._common import (
    DEFAULT_EXPORT,
    ClassIndex,
    ExportOptions,
    TransferReport,
    check_stop,
    export_names,
    select_images,
)
from annotator.formats._output import (
    prepare_export_folders,
    write_bytes_atomic,
    write_upright_image,
)
from annotator.formats._regions import find_regions
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import ImageRecord, Project

LABELME_VERSION = "5.5.0"


def region_shape(mask: np.ndarray, x0: int, y0: int) -> dict[str, Any]:
    """The labelme shape (without label) of one region: ``mask`` is its ``[h, w]`` bool crop
    whose top-left pixel is image pixel ``(x0, y0)``."""
    polygon = _exact_polygon(mask)
    if polygon is not None:
        points = (polygon + [x0, y0]).astype(float).tolist()
        return {"points": points, "shape_type": "polygon", "mask": None}
    h, w = mask.shape
    return {
        "points": [[float(x0), float(y0)], [float(x0 + w - 1), float(y0 + h - 1)]],
        "shape_type": "mask",
        "mask": _png_b64(mask),
    }


def _exact_polygon(mask: np.ndarray) -> np.ndarray | None:
    """``[N, 2]`` int (x, y) outline points (pixel centres) whose PIL fill-with-outline is
    exactly ``mask``, or ``None``."""
    import cv2
    from PIL import Image, ImageDraw

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) != 1 or len(contours[0]) < 3:
        return None
    points = contours[0].reshape(-1, 2)
    canvas = Image.new("1", (mask.shape[1], mask.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points.tolist()], outline=1, fill=1)
    return points if np.array_equal(np.asarray(canvas, dtype=bool), mask) else None


def _png_b64(mask: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image_shapes(indices: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """labelme shapes of one ``[H, W]`` compact-index map (-1 = unlabeled), ``names[i]`` the
    label of index ``i``; regions are disjoint, so their order does not matter."""
    region_map, regions = find_regions(indices, per_region=True)
    shapes = []
    for number, region in enumerate(regions, 1):
        x, y, w, h = region.bbox
        crop = region_map[y : y + h, x : x + w] == number
        shape = {"label": names[region.class_index], **region_shape(crop, x, y)}
        shapes.append({**shape, "group_id": None, "description": "", "flags": {}})
    return shapes


def _document(record: ImageRecord, shapes: list, classes: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": LABELME_VERSION, "flags": {}, "shapes": shapes,
        "imagePath": PurePosixPath(record.relpath).name, "imageData": None,
        "imageHeight": record.height, "imageWidth": record.width,
        "annotator": {"status": record.status, "classes": classes},
    }  # fmt: skip


def export_labelme(
    project: Project,
    out: Path,
    options: ExportOptions = DEFAULT_EXPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Write one labelme JSON per labelled image, and the image beside it, under ``out``."""
    records = select_images(project, options)
    index = ClassIndex(project)
    meta = {c.name: {"color": list(c.color), "synonyms": list(c.synonyms), "novel": c.novel} for c in index.classes}  # fmt: skip
    stems = export_names((r.relpath for r in records), flat=False)
    report = TransferReport()
    prepare_export_folders(project, Path(out))
    for done, record in enumerate(records):
        check_stop(should_stop)
        _export_one(project, index, record, Path(out), stems[record.relpath], meta, report)
        yield Progress(done + 1, len(records), record.relpath)
    report.outputs.append(str(out))
    return report


def _export_one(
    project: Project, index: ClassIndex, record: ImageRecord, out: Path, stem: str,
    meta: dict[str, Any], report: TransferReport,
) -> None:  # fmt: skip
    labels = project.load_labels(record.relpath)
    if labels is None:
        report.skipped.append(f"{record.relpath}: its label file was damaged and set aside")
        return
    try:
        write_upright_image(project.image_path(record.relpath), out / record.relpath)
    except ImageReadError as error:
        report.skipped.append(f"{record.relpath}: {error.reason}")
        return
    shapes = image_shapes(index.to_indices(labels), index.names)
    classes = {s["label"]: meta[s["label"]] for s in shapes}
    document = _document(record, shapes, classes)
    write_bytes_atomic(out / f"{stem}.json", json.dumps(document, indent=1).encode("utf-8"))
    report.written += 1
