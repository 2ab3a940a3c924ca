"""Plain index masks: ``masks/<relpath without suffix>.png`` plus ``classes.json``.

Mask pixels are compact class indices in display order (``uint8``, or ``uint16`` beyond 255
classes); ``unlabeled`` (255 or 65535) marks unlabeled pixels. ``classes.json`` holds
``{"classes": [{"index", "name", "color", "synonyms", "novel"}], "unlabeled": 255,
"statuses": {"<mask path without .png>": "reviewed"}}``; import restores colours, synonyms,
novel flags (of the classes it adds) and statuses from it.
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
from annotator.formats._output import prepare_export_folders, write_bytes_atomic
from annotator.formats._validate import as_int, as_text, read_json_file
from annotator.formats.voc import MaskSource, import_index_masks
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import Project
from annotator.project._labelfile import encode_png


def _classes_document(index: ClassIndex, unlabeled: int, statuses: dict[str, str]) -> dict:
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
    return {"classes": classes, "unlabeled": unlabeled, "statuses": statuses}  # fmt: skip


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
    report, statuses = TransferReport(), {}
    prepare_export_folders(project, Path(out), Path(out) / "masks")
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
        statuses[stems[record.relpath]] = record.status
        report.written += 1
        yield Progress(done + 1, len(records), record.relpath)
    write_bytes_atomic(
        Path(out) / "classes.json",
        json.dumps(_classes_document(index, unlabeled, statuses), indent=1).encode(),
    )
    report.outputs.append(str(out))
    return report  # fmt: skip


def read_classes_json(path: Path) -> MaskSource:
    """Names by index, unlabeled value, class metadata and statuses from ``classes.json``;
    :class:`FormatError` for anything malformed (indices must be ``0..K-1`` without gaps,
    ``unlabeled`` in ``0..65535``)."""
    document = read_json_file(path, "class list")
    if not isinstance(document, dict) or not isinstance(document.get("classes"), list):
        raise FormatError(f"{path} is not a classes.json written by annotator (no 'classes' list)")
    by_index: dict[int, dict] = {}
    for entry in document["classes"]:
        if not isinstance(entry, dict):
            raise FormatError(f"{path}: a class entry is not an object")
        index = as_int(entry.get("index"), f"{path}: a class index", 0, 65534)
        if index in by_index:
            raise FormatError(f"{path}: class index {index} is listed twice")
        by_index[index] = entry
    if sorted(by_index) != list(range(len(by_index))):
        raise FormatError(f"{path}: class indices must run 0..{len(by_index) - 1} without gaps")
    names = [as_text(by_index[i].get("name"), f"{path}: class {i}'s name") for i in range(len(by_index))]  # fmt: skip
    unlabeled = as_int(document.get("unlabeled", 255), f"{path}: 'unlabeled'", 0, 65535)
    statuses = document.get("statuses") if isinstance(document.get("statuses"), dict) else {}
    metadata = {name: by_index[i] for i, name in enumerate(names)}
    return MaskSource(names, unlabeled, metadata, statuses)


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
        classes = MaskSource(list(options.class_names))
    elif (source / "classes.json").exists():
        classes = read_classes_json(source / "classes.json")
    else:
        raise FormatError(
            f"{source} has no classes.json; pass --classes FILE with one class name per line."
        )
    return (yield from import_index_masks(project, folder, classes, options, should_stop))  # fmt: skip
