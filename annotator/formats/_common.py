"""What every exporter and importer shares: choosing images, splits, class indices, matching."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from annotator.errors import FormatError, JobCancelled
from annotator.progress import ShouldStop
from annotator.project import ClassInfo, ImageRecord, Project
from annotator.wording import plural


@dataclass(frozen=True)
class ExportOptions:
    """Settings of one export.

    ``statuses``: only images with one of these statuses (``None`` = any image with human
    labels). ``split``: fraction of images in ``train`` (the rest in ``val``; deterministic).
    COCO: ``per_region`` one annotation per connected region (else one per class per image);
    ``polygons`` instead of RLE (exact along pixel edges, but holes in a region are filled);
    ``copy_images`` writes the images (upright) into ``images/`` beside the JSON, else
    ``file_name`` points at the project's originals only (EXIF-rotated ones are then listed in
    ``report.notes``: loaders that ignore EXIF would pair them with sideways masks).
    """

    statuses: tuple[str, ...] | None = None
    split: float = 1.0
    per_region: bool = True
    polygons: bool = False
    seed: int = 0
    copy_images: bool = True


@dataclass(frozen=True)
class ImportOptions:
    """Settings of one import.

    ``overwrite``: replace existing human labels (else skip them). ``class_names``: names by
    index for index-mask formats (VOC, masks). ``status``: the status imported labels get;
    ``None`` = the status the file itself records (annotator's own exports), else "reviewed"
    (imported human labels are ground truth). ``fill_unlabeled``: a class name for the pixels
    no shape covers (labelme's ``labelme2voc`` calls them ``_background_``); ``None`` keeps them
    unlabeled. ``boxes_as_masks``: COCO boxes without a mask import as filled rectangles.
    ``line_width`` / ``point_radius``: pixels of labelme ``line``/``linestrip``/``point`` shapes
    (labelme's own defaults: 10 and 5).
    """

    overwrite: bool = False
    class_names: tuple[str, ...] | None = None
    status: str | None = None
    fill_unlabeled: str | None = None
    boxes_as_masks: bool = False
    line_width: int = 10
    point_radius: int = 5


@dataclass
class TransferReport:
    """What an export or import did: counts, a line per skipped item saying why, and notes
    (things done besides, e.g. an embedded image added to the project)."""

    written: int = 0
    skipped: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        text = f"{verb} {plural(self.written, 'image')}"
        if self.notes:
            text += "\n  " + "\n  ".join(self.notes[:20])
        if self.skipped:
            text += f"; skipped {len(self.skipped)}:\n  " + "\n  ".join(self.skipped[:20])
        return text


def check_stop(should_stop: ShouldStop) -> None:
    if should_stop():
        raise JobCancelled("Stopped by the user; files already written are complete.")


def list_json_sources(source: Path) -> list[Path]:
    """``source`` itself when it is a file, else every ``*.json`` under it in path order; a
    missing ``source`` raises :class:`FormatError` (the user's path is wrong)."""
    source = Path(source)
    if not source.exists():
        raise FormatError(f"{source} does not exist")
    return [source] if source.is_file() else sorted(source.rglob("*.json"))


def select_images(project: Project, options: ExportOptions) -> list[ImageRecord]:
    """Images with human labels (and one of ``options.statuses`` if given), by path."""
    records = project.list_images(status=options.statuses, has_labels=True)
    if not records:
        wanted = ", ".join(options.statuses) if options.statuses else "any status"
        raise FormatError(
            f"No image in {project.root} has human labels ({wanted}); label or review some first."
        )
    return records  # fmt: skip


def split_records(
    records: Sequence[ImageRecord], train_fraction: float, seed: int
) -> dict[str, str]:
    """``relpath -> "train" | "val"``, a seeded shuffle so repeated exports agree."""
    if not 0.0 <= train_fraction <= 1.0:
        raise FormatError(f"--split must be between 0 and 1, not {train_fraction}.")
    order = sorted(r.relpath for r in records)
    random.Random(seed).shuffle(order)
    cut = round(len(order) * train_fraction)
    return {relpath: ("train" if i < cut else "val") for i, relpath in enumerate(order)}  # fmt: skip


def flat_name(relpath: str) -> str:
    """A flat file stem for formats without subfolders: ``a/b/c.jpg`` -> ``a__b__c``."""
    return str(PurePosixPath(relpath).with_suffix("")).replace("/", "__")


def export_names(relpaths: Iterable[str], flat: bool) -> dict[str, str]:
    """File stem to write for each image: the path without suffix (``flat``: with ``/`` as
    ``__``). Images that would collide (``a.jpg`` and ``a.png``) keep their suffix as
    ``a__jpg`` / ``a__png``, so no export overwrites another image's mask."""

    def stem(relpath: str) -> str:
        return flat_name(relpath) if flat else str(PurePosixPath(relpath).with_suffix(""))

    relpaths = list(relpaths)
    counts: dict[str, int] = {}
    for relpath in relpaths:
        counts[stem(relpath)] = counts.get(stem(relpath), 0) + 1
    return {
        r: stem(r) if counts[stem(r)] == 1 else f"{stem(r)}__{PurePosixPath(r).suffix[1:]}"
        for r in relpaths
    }


class ClassIndex:
    """Compact indices ``0..K-1`` for the project's classes in display order (ids may be sparse)."""

    def __init__(self, project: Project) -> None:
        self.classes: list[ClassInfo] = project.list_classes()
        self.unlabeled = project.unlabeled_value
        self.lut = np.full(int(np.iinfo(project.label_dtype).max) + 1, -1, np.int64)
        for index, info in enumerate(self.classes):
            self.lut[info.id] = index

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def to_indices(self, label_map: np.ndarray) -> np.ndarray:
        """``[H, W]`` project ids -> ``[H, W]`` int64 compact indices, -1 = unlabeled."""
        return self.lut[label_map]


def resolve_classes(project: Project, names: Iterable[str]) -> dict[str, int]:
    """Project class id for each name, adding classes that do not exist yet (merge by name)."""
    ids: dict[str, int] = {}
    for name in names:
        found = project.find_class(name)
        ids[name] = found.id if found is not None else project.add_class(name).id
    return ids


class ImageMatcher:
    """Finds the project image an imported item belongs to: by relative path, then by the
    flattened name the exporters write, then by file stem (only when that stem is unique)."""

    def __init__(self, project: Project) -> None:
        self.records = {r.relpath: r for r in project.list_images()}
        self._by_key: dict[str, list[str]] = {}
        for relpath in self.records:
            plain = str(PurePosixPath(relpath).with_suffix(""))
            suffix = PurePosixPath(relpath).suffix[1:]
            keys = {plain, flat_name(relpath), PurePosixPath(relpath).stem}
            keys |= {f"{plain}__{suffix}", f"{flat_name(relpath)}__{suffix}"}
            for key in keys:
                self._by_key.setdefault(key, []).append(relpath)

    def find(self, name: str) -> ImageRecord | None:
        """The record for ``name`` (a relative path, flat name or stem, suffix optional)."""
        name = name.replace("\\", "/").lstrip("./")
        if name in self.records:
            return self.records[name]
        for key in (str(PurePosixPath(name).with_suffix("")), PurePosixPath(name).stem):
            hits = self._by_key.get(key, [])
            if len(hits) == 1:
                return self.records[hits[0]]
        return None  # fmt: skip


IMPORT_STATUSES = ("edited", "reviewed")


def import_status(options: ImportOptions, recorded: object = None) -> str:
    """The status to store: ``options.status`` if set, else the file's own ``recorded`` status
    (when it is "edited" or "reviewed"), else "reviewed"."""
    if options.status is not None:
        if options.status not in IMPORT_STATUSES:
            raise FormatError(f"--status must be edited or reviewed, not {options.status!r}")
        return options.status
    return recorded if recorded in IMPORT_STATUSES else "reviewed"  # type: ignore[return-value]


def fill_class_id(project: Project, options: ImportOptions) -> int | None:
    """The class id for ``options.fill_unlabeled`` (added if new), or ``None``."""
    if not options.fill_unlabeled:
        return None
    return resolve_classes(project, [options.fill_unlabeled])[options.fill_unlabeled]


class LabelCanvas:
    """An ``[H, W]`` uint16 map of class ids (65535 = unlabeled) that imported shapes are painted
    on, later shapes on top, plus a bool map of the pixels any shape covered (so
    ``fill_unlabeled`` never fills pixels an ignore shape made unlabeled). uint16 whatever the
    project's label dtype, so a class added mid-file with id 255 is still a class."""

    UNLABELED = 65535

    def __init__(self, height: int, width: int) -> None:
        self.values = np.full((height, width), self.UNLABELED, np.uint16)
        self.touched = np.zeros((height, width), bool)

    def paint(self, mask: np.ndarray, class_id: int | None) -> None:
        """Set the pixels of ``mask`` (``[H, W]`` bool) to ``class_id`` (``None`` = ignore:
        unlabeled)."""
        self.values[mask] = self.UNLABELED if class_id is None else class_id
        self.touched |= mask

    def finish(self, project: Project, fill_id: int | None) -> np.ndarray | None:
        """The label map in ``project.label_dtype``, or ``None`` when no shape labelled any
        pixel."""
        unlabeled = self.values == self.UNLABELED
        if unlabeled.all():
            return None
        if fill_id is not None:
            self.values[~self.touched] = fill_id
            unlabeled &= self.touched
        out = self.values.astype(project.label_dtype)
        out[unlabeled] = project.unlabeled_value
        return out


def store_imported(
    project: Project,
    record: ImageRecord,
    label_map: np.ndarray | None,
    options: ImportOptions,
    report: TransferReport,
    status: str = "reviewed",
) -> None:
    """Save an imported map as human labels with ``status`` unless labels exist and
    ``overwrite`` is off. A map with no labelled pixel (``None`` or all unlabeled) is never
    stored: it would turn the image "edited" with nothing on it."""
    if label_map is None or not (label_map != project.unlabeled_value).any():
        report.skipped.append(
            f"{record.relpath}: no labelled pixels in the file for it; nothing stored"
        )
        return
    if label_map.shape != (record.height, record.width):
        report.skipped.append(
            f"{record.relpath}: the labels are {label_map.shape[1]} x {label_map.shape[0]} but the image is "
            f"{record.width} x {record.height}"
        )
        return
    if not options.overwrite and project.get_image(record.relpath).has_labels:
        report.skipped.append(
            f"{record.relpath}: has human labels already (use --overwrite to replace them)"
        )
        return
    project.save_labels(record.relpath, label_map, status=status)
    report.written += 1  # fmt: skip


def apply_class_metadata(project: Project, class_id: int, meta: object) -> None:
    """Restore colour, synonyms and the novel flag that annotator's own exports record
    (``{"color": [r, g, b], "synonyms": [...], "novel": bool}``); malformed values are ignored."""
    if not isinstance(meta, dict):
        return
    color = meta.get("color")
    if (
        isinstance(color, list)
        and len(color) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)
    ):
        project.set_class_color(class_id, tuple(color))
    synonyms = meta.get("synonyms")
    if isinstance(synonyms, list) and all(isinstance(v, str) and v.strip() for v in synonyms):
        project.set_synonyms(class_id, tuple(v.strip() for v in synonyms[:100]))
    if isinstance(meta.get("novel"), bool):
        project.set_novel(class_id, meta["novel"])


def resolve_classes_with_metadata(
    project: Project, names: Iterable[str], metadata: dict[str, object]
) -> dict[str, int]:
    """Like :func:`resolve_classes`; classes this call adds get their ``metadata[name]``."""
    ids: dict[str, int] = {}
    for name in names:
        found = project.find_class(name)
        if found is None:
            found = project.add_class(name)
            apply_class_metadata(project, found.id, metadata.get(name))
        ids[name] = found.id
    return ids


def ids_from_indices(
    indices: np.ndarray, class_ids: Sequence[int], unlabeled_index: int, project: Project
) -> np.ndarray:
    """``[H, W]`` index mask -> project ids: index ``i`` -> ``class_ids[i]``, ``unlabeled_index``
    -> unlabeled. Raises :class:`FormatError` for indices without a class name."""
    top = int(indices.max()) if indices.size else 0
    lut = np.full(max(top, unlabeled_index, len(class_ids)) + 1, -2, np.int64)
    lut[: len(class_ids)] = class_ids
    lut[unlabeled_index] = project.unlabeled_value
    mapped = lut[indices]
    if (mapped == -2).any():
        bad = sorted({int(v) for v in np.unique(indices[mapped == -2])})
        raise FormatError(
            f"class indices {bad[:10]} have no class name; pass --classes with one name per line"
        )
    return mapped.astype(project.label_dtype)  # fmt: skip


#: Defaults as module-level singletons (the options are frozen, so sharing them is safe).
DEFAULT_EXPORT = ExportOptions()
DEFAULT_IMPORT = ImportOptions()
