"""ISAT (``yatengLG/ISAT_with_segment_anything``) JSON import: one ``.json`` per image,
``{"info": {"name", "width", "height", ...}, "objects": [{"category", "group",
"segmentation": [[x, y], ...], "area", "layer", "bbox", "iscrowd", "note"}]}``.

Objects are painted in ascending ``layer`` (ISAT's own converters sort by it; later layers on
top). Each polygon's points are truncated to integers, as ISAT's converters do, then filled with
outline as labelme does (PIL); ISAT's own VOC converter samples pixel centres instead, so a
polygon's edge pixels may differ by one. The image is found from ``info.name``, else from the
JSON file's path under the imported folder, else its stem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.formats._common import (
    DEFAULT_IMPORT,
    ImageMatcher,
    ImportOptions,
    LabelCanvas,
    TransferReport,
    check_stop,
    fill_class_id,
    import_status,
    list_json_sources,
    resolve_classes,
    store_imported,
)
from annotator.formats._validate import as_text, check_declared_size, check_points, read_json_file
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import ImageRecord, Project
from annotator.wording import plural


def _read(path: Path) -> dict[str, Any]:
    document = read_json_file(path, "ISAT file")
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        raise FormatError("not an ISAT file (no list of 'objects')")
    if not isinstance(document.get("info", {}), dict):
        raise FormatError("not an ISAT file ('info' is not an object)")
    return document


def object_mask(obj: dict[str, Any], height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool mask of one ISAT object's polygon (points truncated to ints)."""
    from PIL import Image, ImageDraw

    points = check_points(obj.get("segmentation"), width, height, "its segmentation")
    if len(points) < 3:
        raise FormatError(f"a polygon with {plural(len(points), 'point')} (needs 3)")
    canvas = Image.new("1", (width, height), 0)
    xy = [tuple(p) for p in np.trunc(points).astype(np.int64).tolist()]
    ImageDraw.Draw(canvas).polygon(xy, outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def _layer(obj: Any) -> float:
    value = obj.get("layer") if isinstance(obj, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return 0.0


def _find(matcher: ImageMatcher, source: Path, path: Path, info: dict) -> ImageRecord | None:
    candidates = [info["name"]] if isinstance(info.get("name"), str) and info["name"] else []
    if source.is_dir() and path.is_relative_to(source):
        candidates.append(path.relative_to(source).with_suffix("").as_posix())
    candidates.append(path.stem)
    for candidate in candidates:
        found = matcher.find(candidate)
        if found is not None:
            return found
    return None


def _label_map(
    project: Project, record: ImageRecord, document: dict, fill_id: int | None, left_out: list[str]
) -> np.ndarray | None:
    canvas = LabelCanvas(record.height, record.width)
    for number, obj in sorted(enumerate(document["objects"]), key=lambda p: _layer(p[1])):
        try:
            if not isinstance(obj, dict):
                raise FormatError("not an object")
            name = as_text(obj.get("category"), "its category")
            mask = object_mask(obj, record.height, record.width)
        except FormatError as error:
            left_out.append(f"object #{number + 1}: {error}; left out")
            continue
        canvas.paint(mask, resolve_classes(project, [name])[name])
    return canvas.finish(project, fill_id)


def import_isat(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import every ISAT ``*.json`` under ``source`` (a folder or one file) as human labels."""
    source = Path(source)
    files = list_json_sources(source)
    matcher, report = ImageMatcher(project), TransferReport()
    fill_id = fill_class_id(project, options)
    for done, path in enumerate(files):
        check_stop(should_stop)
        try:
            _import_file(project, matcher, source, path, fill_id, options, report)
        except FormatError as error:
            report.skipped.append(f"{path}: {error}")
        yield Progress(done + 1, len(files), path.name)
    return report


def _import_file(
    project: Project, matcher: ImageMatcher, source: Path, path: Path, fill_id: int | None,
    options: ImportOptions, report: TransferReport,
) -> None:  # fmt: skip
    document = _read(path)
    info = document.get("info", {})
    record = _find(matcher, source, path, info)
    if record is None:
        raise FormatError(f"no image in the project for {info.get('name')!r}")
    check_declared_size(info.get("width"), info.get("height"), record.width, record.height)
    left_out: list[str] = []
    label_map = _label_map(project, record, document, fill_id, left_out)
    report.skipped.extend(f"{path.name}: {line}" for line in left_out[:20])
    store_imported(project, record, label_map, options, report, import_status(options))
