"""COCO instance-style JSON for semantic labels: export (RLE or polygons) and import.

Export writes one annotation per connected region of each class (or one per class per image),
``segmentation`` as compressed RLE by default (``pycocotools.mask`` encoding, exact), ``area``
(pixel count), ``bbox`` ``[x, y, w, h]`` and ``iscrowd`` 0. ``file_name`` is the image's path
relative to the project folder; ``width``/``height`` are display sizes (EXIF applied).
Category ids are compact display indices + 1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.formats._common import (
    DEFAULT_EXPORT,
    DEFAULT_IMPORT,
    ClassIndex,
    ExportOptions,
    ImageMatcher,
    ImportOptions,
    TransferReport,
    check_stop,
    resolve_classes,
    select_images,
    split_records,
    store_imported,
)
from annotator.formats._regions import encode_regions, find_regions
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import ImageRecord, Project


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE (``counts`` as str) of a ``[H, W]`` bool/uint8 mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def encode_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outlines of a ``[H, W]`` mask as COCO polygons ``[x0, y0, x1, y1, ...]`` along pixel
    edges (pixel ``(x, y)`` spans ``[x, x + 1) x [y, y + 1)``), so pycocotools rasterises them
    back to the same pixels. Lossy only for holes: COCO polygons cannot express them, so a
    region's holes come back filled.
    """
    import cv2

    # Tracing the mask at twice the size puts contour points on boundary pixels whose index
    # parity tells the edge: 2x is the left/top edge x, 2x + 1 the right/bottom edge x + 1.
    doubled = np.kron(mask.astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [((c.reshape(-1, 2) + 1) // 2).astype(float).ravel().tolist() for c in contours]


def image_annotations(
    indices: np.ndarray, image_id: int, first_id: int, options: ExportOptions
) -> list[dict[str, Any]]:
    """COCO annotations of one ``[H, W]`` compact-index map (-1 = unlabeled)."""
    region_map, regions = find_regions(indices, options.per_region)
    if options.polygons:
        segmentations = [encode_polygons(region_map == n) for n in range(1, len(regions) + 1)]
    else:
        segmentations = encode_regions(region_map, len(regions))
    annotations: list[dict[str, Any]] = []
    for region, segmentation in zip(regions, segmentations, strict=True):
        if not segmentation:
            continue  # a polygon needs three points; a region of one or two pixels has none
        annotations.append({
            "id": first_id + len(annotations), "image_id": image_id,
            "category_id": region.class_index + 1, "segmentation": segmentation,
            "area": region.area, "bbox": region.bbox, "iscrowd": 0,
        })  # fmt: skip
    return annotations


def _categories(index: ClassIndex) -> list[dict[str, Any]]:
    return [
        {"id": i + 1, "name": c.name, "supercategory": "", "color": list(c.color),
         "synonyms": list(c.synonyms), "novel": c.novel}
        for i, c in enumerate(index.classes)
    ]  # fmt: skip


def _coco_path(out: Path) -> Path:
    return out if out.suffix.lower() == ".json" else out / "annotations.json"


def export_coco(
    project: Project,
    out: Path,
    options: ExportOptions = DEFAULT_EXPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Write a COCO JSON to ``out`` (a ``.json`` path, or a folder for ``annotations.json``).
    With ``options.split < 1`` two files are written: ``*_train.json`` and ``*_val.json``."""
    records = select_images(project, options)
    index = ClassIndex(project)
    splits = split_records(records, options.split, options.seed) if options.split < 1 else None
    images, annotations = {"train": [], "val": []}, {"train": [], "val": []}
    report = TransferReport()
    for done, record in enumerate(records):
        check_stop(should_stop)
        part = splits[record.relpath] if splits else "train"
        labels = project.load_labels(record.relpath)
        if labels is None:
            report.skipped.append(f"{record.relpath}: its label file was damaged and set aside")
            continue
        image_id = done + 1
        images[part].append(
            {
                "id": image_id,
                "file_name": record.relpath,
                "width": record.width,
                "height": record.height,
            }
        )
        first = sum(len(a) for a in annotations.values()) + 1
        annotations[part].extend(
            image_annotations(index.to_indices(labels), image_id, first, options)
        )
        report.written += 1
        yield Progress(done + 1, len(records), record.relpath)
    path = _coco_path(out)
    for part in ("train", "val") if splits else ("train",):
        target = path.with_name(f"{path.stem}_{part}.json") if splits else path
        _write_json(target, _document(images[part], annotations[part], _categories(index), project))
        report.outputs.append(str(target))
    return report  # fmt: skip


def _document(
    images: list, annotations: list, categories: list, project: Project
) -> dict[str, Any]:
    info = {
        "description": f"Exported by annotator from {project.root}",
        "date_created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories}  # fmt: skip


def _write_json(path: Path, document: dict[str, Any]) -> None:
    from annotator.project._atomic import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(document, separators=(",", ":")).encode("utf-8"))


# ---------------------------------------------------------------------------------- import


def annotation_mask(annotation: dict[str, Any], height: int, width: int) -> np.ndarray:
    """``[H, W]`` bool mask of a COCO annotation: polygons, compressed or uncompressed RLE."""
    from pycocotools import mask as mask_utils

    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), bool)
        rles = mask_utils.frPyObjects([p for p in segmentation if len(p) >= 6], height, width)
        rle = mask_utils.merge(rles) if rles else None
    elif isinstance(segmentation, dict):
        rle = segmentation
        if isinstance(rle.get("counts"), list):
            rle = mask_utils.frPyObjects(rle, *rle["size"])
        elif isinstance(rle.get("counts"), str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    else:
        raise FormatError(f"annotation {annotation.get('id')} has no segmentation")
    if rle is None:
        return np.zeros((height, width), bool)
    mask = mask_utils.decode(rle).astype(bool)
    if mask.shape != (height, width):
        raise FormatError(
            f"annotation {annotation.get('id')} is {mask.shape[::-1]}, its image {width} x {height}"
        )
    return mask  # fmt: skip


def _label_map(
    anns: list[dict[str, Any]], image: dict[str, Any], ids: dict[int, int], project: Project
) -> np.ndarray:
    """Paint annotations largest first, so small regions on top of large ones survive."""
    height, width = int(image["height"]), int(image["width"])
    label_map = np.full((height, width), project.unlabeled_value, project.label_dtype)
    for ann in sorted(anns, key=lambda a: -float(a.get("area") or 0)):
        label_map[annotation_mask(ann, height, width)] = ids[int(ann["category_id"])]
    return label_map  # fmt: skip


def load_coco_json(source: Path) -> dict[str, Any]:
    try:
        document = json.loads(Path(source).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise FormatError(f"Cannot read the COCO file {source}: {error}") from error
    if not all(key in document for key in ("images", "annotations", "categories")):
        raise FormatError(
            f"{source} is not a COCO file: it needs images, annotations and categories."
        )
    return document  # fmt: skip


def import_coco(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import a COCO JSON (polygons and RLE, iscrowd included) as human labels (``edited``)."""
    document = load_coco_json(source)
    names = {int(c["id"]): str(c["name"]) for c in document["categories"]}
    class_ids = resolve_classes(project, names.values())
    ids = {cat: class_ids[name] for cat, name in names.items()}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in document["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    matcher, report = ImageMatcher(project), TransferReport()
    for done, image in enumerate(document["images"]):
        check_stop(should_stop)
        _import_one(
            project, matcher, image, by_image.get(int(image["id"]), []), ids, options, report
        )
        yield Progress(done + 1, len(document["images"]), str(image.get("file_name")))
    return report  # fmt: skip


def _import_one(
    project: Project, matcher: ImageMatcher, image: dict[str, Any], anns: list, ids: dict[int, int],
    options: ImportOptions, report: TransferReport,
) -> None:  # fmt: skip
    record: ImageRecord | None = matcher.find(str(image.get("file_name", "")))
    if record is None:
        report.skipped.append(f"{image.get('file_name')}: no such image in the project")
        return
    try:
        label_map = _label_map(anns, image, ids, project)
    except FormatError as error:
        report.skipped.append(f"{record.relpath}: {error}")
        return
    store_imported(project, record, label_map, options, report)
