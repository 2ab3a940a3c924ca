"""COCO instance-style JSON for semantic labels: export (RLE or polygons) and import.

Export writes one annotation per connected region of each class (or one per class per image),
``segmentation`` as compressed RLE by default (``pycocotools.mask`` encoding, exact), ``area``
(pixel count of the decoded segmentation), ``bbox`` ``[x, y, w, h]`` and ``iscrowd`` 0.
``file_name`` is the image's path relative to the project folder and to ``images/`` beside the
JSON, where the images are written upright; ``width``/``height`` are display sizes (EXIF
applied). Category and image ids are kept from an import (:mod:`annotator.formats._meta`), new
ones never collide.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import FormatError
from annotator.formats._coco_masks import annotation_mask
from annotator.formats._coco_read import CocoContents, ImageEntry, paint_order, read_contents
from annotator.formats._common import (
    DEFAULT_EXPORT,
    DEFAULT_IMPORT,
    ClassIndex,
    ExportOptions,
    ImageMatcher,
    ImportOptions,
    LabelCanvas,
    TransferReport,
    check_stop,
    fill_class_id,
    import_status,
    resolve_classes_with_metadata,
    select_images,
    split_records,
    store_imported,
)
from annotator.formats._meta import category_ids, image_ids, remember_source_ids
from annotator.formats._output import (
    exif_orientation,
    prepare_export_folders,
    write_upright_image,
)
from annotator.formats._regions import encode_regions, find_regions
from annotator.formats._validate import check_declared_size, id_key, read_json_file
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
    indices: np.ndarray,
    image_id: int,
    first_id: int,
    options: ExportOptions,
    category_of: list[int] | None = None,
) -> list[dict[str, Any]]:
    """COCO annotations of one ``[H, W]`` compact-index map (-1 = unlabeled); class index ``i``
    gets category id ``category_of[i]`` (default ``i + 1``). ``area`` is the pixel count of what
    pycocotools decodes from ``segmentation`` (for polygons: their RLE area, holes included)."""
    region_map, regions = find_regions(indices, options.per_region)
    if options.polygons:
        segmentations = [encode_polygons(region_map == n) for n in range(1, len(regions) + 1)]
    else:
        segmentations = encode_regions(region_map, len(regions))
    annotations: list[dict[str, Any]] = []
    for region, segmentation in zip(regions, segmentations, strict=True):
        if not segmentation:
            continue  # a polygon needs three points; a region of one or two pixels has none
        area = _polygon_area(segmentation, *indices.shape) if options.polygons else region.area
        category = category_of[region.class_index] if category_of else region.class_index + 1
        annotations.append({
            "id": first_id + len(annotations), "image_id": image_id,
            "category_id": category, "segmentation": segmentation,
            "area": area, "bbox": region.bbox, "iscrowd": 0,
        })  # fmt: skip
    return annotations


def _polygon_area(polygons: list[list[float]], height: int, width: int) -> int:
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))


def _categories(project: Project, index: ClassIndex) -> list[dict[str, Any]]:
    ids = category_ids(project, index.classes)
    return [
        {"id": ids[c.id][0], "name": c.name, "supercategory": ids[c.id][1], "color": list(c.color),
         "synonyms": list(c.synonyms), "novel": c.novel}
        for c in index.classes
    ]  # fmt: skip


def _coco_path(out: Path) -> Path:
    return out if out.suffix.lower() == ".json" else out / "annotations.json"


def export_coco(
    project: Project,
    out: Path,
    options: ExportOptions = DEFAULT_EXPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Write a COCO JSON to ``out`` (a ``.json`` path, or a folder for ``annotations.json``)
    and the images, upright, under ``images/`` beside it (``file_name`` is the path relative to
    both the project folder and that folder; EXIF-rotated images are written in display
    orientation so image and mask agree in every loader). With ``options.split < 1`` two files
    are written: ``*_train.json`` and ``*_val.json``. Category and image ids are the source ids
    an import remembered, else display order + 1 / path order + 1 (never colliding)."""
    records = select_images(project, options)
    index = ClassIndex(project)
    categories = _categories(project, index)
    category_of = [c["id"] for c in categories]
    splits = split_records(records, options.split, options.seed) if options.split < 1 else None
    ids = image_ids(project, [r.relpath for r in records])
    path = _coco_path(out)
    image_folder = path.parent / "images"
    prepare_export_folders(project, path.parent, *([image_folder] if options.copy_images else []))
    images, annotations = {"train": [], "val": []}, {"train": [], "val": []}
    report = TransferReport()
    for done, record in enumerate(records):
        check_stop(should_stop)
        part = splits[record.relpath] if splits else "train"
        folder = image_folder if options.copy_images else None
        entry = _export_image(project, record, folder, ids[record.relpath], report)
        if entry is not None:
            labels = entry.pop("_labels")
            images[part].append(entry)
            first = sum(len(a) for a in annotations.values()) + 1
            annotations[part].extend(
                image_annotations(index.to_indices(labels), entry["id"], first, options, category_of)
            )  # fmt: skip
        yield Progress(done + 1, len(records), record.relpath)
    for part in ("train", "val") if splits else ("train",):
        target = path.with_name(f"{path.stem}_{part}.json") if splits else path
        _write_json(target, _document(images[part], annotations[part], categories, project))
        report.outputs.append(str(target))
    return report  # fmt: skip


def _export_image(
    project: Project, record: ImageRecord, image_folder: Path | None, image_id: int,
    report: TransferReport,
) -> dict[str, Any] | None:  # fmt: skip
    """Write one image upright into ``image_folder`` (``None``: only check its orientation);
    its COCO entry (labels under ``_labels``)."""
    from annotator.errors import ImageReadError

    labels = project.load_labels(record.relpath)
    if labels is None:
        report.skipped.append(f"{record.relpath}: its label file was damaged and set aside")
        return None
    source = project.image_path(record.relpath)
    try:
        if image_folder is not None:
            write_upright_image(source, image_folder / record.relpath)
        elif exif_orientation(source) != 1:
            report.notes.append(
                f"{record.relpath} is EXIF-rotated: loaders that ignore EXIF see it sideways to "
                "its mask; export with images to get it upright"
            )
    except ImageReadError as error:
        report.skipped.append(f"{record.relpath}: {error.reason}")
        return None
    report.written += 1
    return {
        "id": image_id, "file_name": record.relpath, "width": record.width,
        "height": record.height, "annotator_status": record.status, "_labels": labels,
    }  # fmt: skip


def _document(
    images: list, annotations: list, categories: list, project: Project
) -> dict[str, Any]:
    info = {
        "description": f"Exported by annotator from the project {Path(project.root).name!r}",
        "date_created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories}  # fmt: skip


def _write_json(path: Path, document: dict[str, Any]) -> None:
    from annotator.formats._output import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(document, separators=(",", ":")).encode("utf-8"))


# ---------------------------------------------------------------------------------- import


def load_coco_json(source: Path) -> dict[str, Any]:
    """The parsed document; :class:`FormatError` when it cannot be read or is not COCO."""
    document = read_json_file(Path(source), "COCO file")
    if not isinstance(document, dict) or not all(key in document for key in ("images", "annotations", "categories")):  # fmt: skip
        raise FormatError(
            f"{source} is not a COCO file: it needs images, annotations and categories."
        )
    return document


def _check_has_masks(contents: CocoContents, options: ImportOptions, source: Path) -> None:
    if contents.with_mask == 0 and contents.box_only and not options.boxes_as_masks:
        raise FormatError(
            f"No masks in this file: {source} holds {contents.box_only} boxes (detection only) and "
            "no segmentation. Pass --boxes-as-masks to import each box as a filled rectangle."
        )
    if contents.with_mask + (contents.box_only if options.boxes_as_masks else 0) == 0:
        raise FormatError(f"No usable annotations in {source}; nothing imported.")


def import_coco(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import a COCO JSON (polygons, RLE, iscrowd; boxes with ``boxes_as_masks``) as human
    labels. Bad entries are listed in ``report.skipped`` and the rest imports; category ids,
    names and supercategories and image ids are remembered for the next COCO export."""
    contents = read_contents(load_coco_json(source))
    _check_has_masks(contents, options, Path(source))
    report = TransferReport(skipped=list(contents.problems))
    used = {a["category_id"] for anns in contents.annotations.values() for a in anns}
    used_keys = {id_key(v, "category_id") for v in used}
    categories = {k: c for k, c in contents.categories.items() if k in used_keys}
    names = {c.name: c.meta for c in categories.values()}
    class_ids = resolve_classes_with_metadata(project, names, names)
    ids = {key: class_ids[c.name] for key, c in categories.items()}
    fill_id = fill_class_id(project, options)
    matcher, stored_ids = ImageMatcher(project), {}
    for done, (key, image) in enumerate(contents.images):
        check_stop(should_stop)
        anns = contents.annotations.get(key, [])
        relpath = _import_one(project, matcher, image, anns, ids, fill_id, options, report)
        if relpath is not None:
            stored_ids[relpath] = image.id
        yield Progress(done + 1, len(contents.images), image.file_name)
    remember_source_ids(
        project, {ids[k]: {"id": c.id, "supercategory": c.supercategory} for k, c in categories.items()}, stored_ids
    )  # fmt: skip
    return report


def _import_one(
    project: Project, matcher: ImageMatcher, image: ImageEntry, anns: list, ids: dict[str, int],
    fill_id: int | None, options: ImportOptions, report: TransferReport,
) -> str | None:  # fmt: skip
    """Import one image's annotations; the project relpath when it matched an image."""
    record: ImageRecord | None = matcher.find(image.file_name)
    if record is None:
        report.skipped.append(f"{image.file_name}: no such image in the project")
        return None
    if not anns and fill_id is None:
        report.skipped.append(f"{record.relpath}: no annotations for it in the file; nothing stored")  # fmt: skip
        return record.relpath
    orientation = _stored_orientation(project, record, image)
    size = (record.height, record.width) if orientation != 1 else (record.width, record.height)
    try:
        check_declared_size(image.width, image.height, *size)
        canvas = _paint(anns, record, size, ids, options, report)
    except FormatError as error:
        report.skipped.append(f"{record.relpath}: {error}")
        return record.relpath
    label_map = canvas.finish(project, fill_id) if anns else _filled(record, fill_id, project)
    if orientation != 1 and label_map is not None and anns:
        label_map = to_display_orientation(label_map, orientation)
        report.notes.append(f"{record.relpath}: the file's masks are in the stored (EXIF-unrotated) orientation; rotated upright")  # fmt: skip
    status = import_status(options, image.status)
    store_imported(project, record, label_map, options, report, status)
    return record.relpath


def _filled(record: ImageRecord, fill_id: int | None, project: Project) -> np.ndarray:
    return np.full((record.height, record.width), fill_id, project.label_dtype)


def _stored_orientation(project: Project, record: ImageRecord, image: ImageEntry) -> int:
    """The image's EXIF orientation (5..8) when the file declares its stored, unrotated size
    (tools that ignore EXIF write that), else 1: masks are then in display orientation."""
    declared = (image.width, image.height)
    if record.width == record.height or declared != (record.height, record.width):
        return 1
    orientation = exif_orientation(project.image_path(record.relpath))
    return orientation if orientation in (5, 6, 7, 8) else 1


def to_display_orientation(label_map: np.ndarray, orientation: int) -> np.ndarray:
    """An ``[h, w]`` map in a file's stored orientation turned the way EXIF ``orientation``
    (5..8) displays it (as PIL's ``exif_transpose``): ``[w, h]``."""
    turned = {5: label_map.T, 6: np.rot90(label_map, -1), 7: np.rot90(label_map, 2).T, 8: np.rot90(label_map, 1)}  # fmt: skip
    return np.ascontiguousarray(turned[orientation])


def _paint(
    anns: list, record: ImageRecord, size: tuple[int, int], ids: dict[str, int],
    options: ImportOptions, report: TransferReport,
) -> LabelCanvas:  # fmt: skip
    width, height = size
    canvas = LabelCanvas(height, width)
    for ann in paint_order(anns):
        notes: list[str] = []
        try:
            mask = annotation_mask(ann, height, width, options.boxes_as_masks, notes)
        except FormatError as error:
            report.skipped.append(f"{record.relpath}: {error}")
            continue
        report.skipped.extend(f"{record.relpath}: {note}" for note in notes)
        canvas.paint(mask, ids[id_key(ann["category_id"], "category_id")])
    return canvas
