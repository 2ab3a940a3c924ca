"""Plain index masks: ``masks/<relpath without suffix>.png`` plus ``classes.json``.

Mask pixels are compact class indices in display order (``uint8``, or ``uint16`` beyond 255
classes); ``unlabeled`` (255 or 65535) marks unlabeled pixels. ``classes.json`` holds
``{"classes": [{"index", "name", "color", "synonyms", "novel"}], "unlabeled": 255}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from annotator.errors import FormatError
from annotator.formats._common import (
    DEFAULT_EXPORT,
    DEFAULT_IMPORT,
    ClassIndex,
    ExportOptions,
    ImportOptions,
    TransferReport,
    check_stop,
    export_names,
    select_images,
)
from annotator.formats.voc import import_index_masks
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import Project
from annotator.project._atomic import write_bytes_atomic
from annotator.project._labelfile import encode_png


def _classes_document(index: ClassIndex, unlabeled: int) -> dict:
    classes = [
        {
            "index": i,
            "name": c.name,
            "color": list(c.color),
            "synonyms": list(c.synonyms),
            "novel": c.novel,
        }
        for i, c in enumerate(index.classes)
    ]
    return {"classes": classes, "unlabeled": unlabeled}  # fmt: skip


def export_masks(
    project: Project,
    out: Path,
    options: ExportOptions = DEFAULT_EXPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Write ``out/masks/...png`` index masks and ``out/classes.json``."""
    records = select_images(project, options)
    index = ClassIndex(project)
    dtype = np.uint8 if len(index.classes) < 255 else np.uint16
    unlabeled = int(np.iinfo(dtype).max)
    report = TransferReport()
    stems = export_names((r.relpath for r in records), flat=False)
    for done, record in enumerate(records):
        check_stop(should_stop)
        labels = project.load_labels(record.relpath)
        if labels is None:
            report.skipped.append(f"{record.relpath}: its label file was damaged and set aside")
            continue
        compact = index.to_indices(labels)
        mask = np.where(compact < 0, unlabeled, compact).astype(dtype)
        target = Path(out) / "masks" / f"{stems[record.relpath]}.png"
        write_bytes_atomic(target, encode_png(mask))
        report.written += 1
        yield Progress(done + 1, len(records), record.relpath)
    write_bytes_atomic(
        Path(out) / "classes.json",
        json.dumps(_classes_document(index, unlabeled), indent=1).encode(),
    )
    report.outputs.append(str(out))
    return report  # fmt: skip


def _read_classes_json(path: Path) -> tuple[list[str], int]:
    try:
        document = json.loads(path.read_text("utf-8"))
        classes = sorted(document["classes"], key=lambda c: int(c["index"]))
        return [str(c["name"]) for c in classes], int(document.get("unlabeled", 255))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FormatError(f"{path} is not a classes.json written by annotator: {error}") from error


def import_masks(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import index masks from ``source`` (a folder holding ``masks/`` and ``classes.json``, or a
    folder of PNGs whose names come from ``options.class_names``)."""
    source = Path(source)
    folder = source / "masks" if (source / "masks").is_dir() else source
    if options.class_names:
        names, unlabeled = list(options.class_names), 255
    elif (source / "classes.json").exists():
        names, unlabeled = _read_classes_json(source / "classes.json")
    else:
        raise FormatError(
            f"{source} has no classes.json; pass --classes FILE with one class name per line."
        )
    return (yield from import_index_masks(project, folder, names, options, should_stop, unlabeled))  # fmt: skip
