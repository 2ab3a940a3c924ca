"""Pascal-VOC segmentation layout: export and import.

Export writes ``VOCdevkit/VOC2012/`` with ``JPEGImages/<name>.jpg`` (JPEG sources without an EXIF
rotation are copied byte for byte, others decoded in display orientation and re-encoded at
quality 95), ``SegmentationClass/<name>.png`` (palette PNGs, standard VOC colour map, index =
class display index, 255 = unlabeled), ``ImageSets/Segmentation/{train,val,trainval}.txt`` and
``class_names.txt`` (one name per line in index order). ``<name>`` is the image path without
suffix, ``/`` replaced by ``__``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annotator.errors import FormatError, ImageReadError
from annotator.formats._common import (
    DEFAULT_EXPORT,
    DEFAULT_IMPORT,
    ClassIndex,
    ExportOptions,
    ImageMatcher,
    ImportOptions,
    TransferReport,
    check_stop,
    export_names,
    fill_class_id,
    ids_from_indices,
    import_status,
    resolve_classes_with_metadata,
    select_images,
    split_records,
    store_imported,
)
from annotator.formats._output import (
    prepare_export_folders,
    write_bytes_atomic,
    write_upright_image,
)
from annotator.imageio import load_image
from annotator.metrics import read_class_names, read_index_mask
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import ImageRecord, Project
from annotator.project._palette import voc_palette

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

VOC_UNLABELED = 255
_FLAT_PALETTE = [value for color in voc_palette(256) for value in color]


def encode_voc_png(indices: np.ndarray) -> bytes:
    """Palette PNG bytes of a ``[H, W]`` uint8 index map with the VOC colour map."""
    from PIL import Image

    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(_FLAT_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _is_plain_jpeg(path: Path) -> bool:
    """A JPEG with no EXIF rotation: loaders will see it exactly as we do."""
    from PIL import Image

    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return False
    try:
        with Image.open(path) as image:
            return (
                image.format == "JPEG"
                and image.mode == "RGB"
                and image.getexif().get(0x0112, 1) == 1
            )
    except (OSError, ValueError, SyntaxError):
        return False  # unreadable: load_image then says why, and the image is skipped


def _write_image(source: Path, target: Path) -> None:
    """``target`` (a ``.jpg``) atomically: a byte copy of plain JPEGs, else re-encoded upright."""
    from PIL import Image

    if _is_plain_jpeg(source):
        write_upright_image(source, target)
        return
    buffer = io.BytesIO()
    Image.fromarray(load_image(source)).save(buffer, format="JPEG", quality=95)
    write_bytes_atomic(target, buffer.getvalue())


def _voc_indices(index: ClassIndex, labels: np.ndarray) -> np.ndarray:
    compact = index.to_indices(labels)
    return np.where(compact < 0, VOC_UNLABELED, compact).astype(np.uint8)


def export_voc(
    project: Project,
    out: Path,
    options: ExportOptions = DEFAULT_EXPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Write the VOC layout under ``out/VOCdevkit/VOC2012`` (at most 255 classes)."""
    index = ClassIndex(project)
    if len(index.classes) > VOC_UNLABELED:
        raise FormatError(
            f"VOC masks hold at most 255 classes; the project has {len(index.classes)}. Export COCO or masks instead."
        )
    records = select_images(project, options)
    root = Path(out) / "VOCdevkit" / "VOC2012"
    prepare_export_folders(project, Path(out), Path(out) / "VOCdevkit")
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    report, names = TransferReport(), {"train": [], "val": []}
    splits = split_records(records, options.split, options.seed)
    stems = export_names((r.relpath for r in records), flat=True)
    for done, record in enumerate(records):
        check_stop(should_stop)
        name = stems[record.relpath]
        if _export_one(project, index, record, root, name, report):
            names[splits[record.relpath]].append(name)
        yield Progress(done + 1, len(records), record.relpath)
    _write_lists(root, names, index.names)
    report.outputs.append(str(root))
    return report  # fmt: skip


def _export_one(
    project: Project,
    index: ClassIndex,
    record: ImageRecord,
    root: Path,
    name: str,
    report: TransferReport,
) -> bool:
    labels = project.load_labels(record.relpath)
    if labels is None:
        report.skipped.append(f"{record.relpath}: its label file was damaged and set aside")
        return False
    try:
        _write_image(project.image_path(record.relpath), root / "JPEGImages" / f"{name}.jpg")
    except ImageReadError as error:
        report.skipped.append(f"{record.relpath}: {error.reason}")
        return False
    write_bytes_atomic(
        root / "SegmentationClass" / f"{name}.png", encode_voc_png(_voc_indices(index, labels))
    )
    report.written += 1
    return True  # fmt: skip


def _write_lists(root: Path, names: dict[str, list[str]], class_names: list[str]) -> None:
    lists = root / "ImageSets" / "Segmentation"
    for part, items in (*names.items(), ("trainval", names["train"] + names["val"])):
        write_bytes_atomic(lists / f"{part}.txt", "".join(f"{n}\n" for n in sorted(items)).encode())
    write_bytes_atomic(root / "class_names.txt", "".join(f"{n}\n" for n in class_names).encode())


# ---------------------------------------------------------------------------------- import


def _segmentation_folder(source: Path) -> Path:
    for candidate in (source, source / "SegmentationClass", source / "VOC2012" / "SegmentationClass",
                      source / "VOCdevkit" / "VOC2012" / "SegmentationClass"):  # fmt: skip
        if candidate.is_dir() and any(candidate.glob("*.png")):
            return candidate
    raise FormatError(f"{source} holds no VOC masks; give a VOCdevkit/VOC2012 folder or its SegmentationClass folder.")  # fmt: skip


def voc_class_names(folder: Path, options: ImportOptions) -> list[str]:
    """``--classes`` if given, else ``class_names.txt`` beside the masks, else the 21 VOC names."""
    if options.class_names:
        return list(options.class_names)
    for candidate in (folder.parent / "class_names.txt", folder / "class_names.txt"):
        if candidate.exists():
            return read_class_names(candidate)
    return list(VOC_CLASSES)


def read_voc_mask(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A VOC mask as ``[H, W]`` int64 indices in ``0..65535``: palette/grayscale PNGs as stored;
    RGB PNGs (as some tools write them) mapped back through the VOC colour map. ``size``
    ``(width, height)``: the image's real size, compared with the PNG header before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if size is not None and image.size != tuple(size):
                raise FormatError(
                    f"the mask is {image.width} x {image.height}, the image is {size[0]} x {size[1]}"
                )
            if image.mode not in ("RGB", "RGBA"):
                indices = read_index_mask(path)
            else:
                indices = _rgb_indices(np.asarray(image.convert("RGB")).astype(np.int64))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise FormatError(f"cannot read the mask: {error}") from error
    if indices.size and (indices.min() < 0 or indices.max() > 65535):
        raise FormatError(f"mask values {indices.min()}..{indices.max()} are not class indices")
    return indices


def _rgb_indices(rgb: np.ndarray) -> np.ndarray:
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(voc_palette(256))}
    values, inverse = np.unique(codes, return_inverse=True)
    unknown = [f"#{v:06x}" for v in values if int(v) not in lookup]
    if unknown:
        raise FormatError(f"colours {unknown[:5]} are not in the VOC colour map")
    return np.array([lookup[int(v)] for v in values], np.int64)[inverse.reshape(codes.shape)]


@dataclass(frozen=True)
class MaskSource:
    """What an index-mask import knows besides the PNGs: names by index, the unlabeled value,
    annotator metadata per class name (colour, synonyms, novel) and statuses by mask path."""

    names: list[str]
    unlabeled: int = VOC_UNLABELED
    metadata: dict[str, object] = field(default_factory=dict)
    statuses: dict[str, object] = field(default_factory=dict)


def import_index_masks(
    project: Project,
    folder: Path,
    names: list[str] | MaskSource,
    options: ImportOptions,
    should_stop: ShouldStop,
    unlabeled: int = VOC_UNLABELED,
) -> Job[TransferReport]:
    """Import every ``*.png`` index mask under ``folder`` as human labels; index ``i`` is
    ``names[i]``, ``unlabeled`` marks unlabeled pixels."""
    source = names if isinstance(names, MaskSource) else MaskSource(list(names), unlabeled)
    by_name = resolve_classes_with_metadata(project, source.names, source.metadata)
    class_ids = [by_name[name] for name in source.names]
    fill_id = fill_class_id(project, options)
    matcher, report = ImageMatcher(project), TransferReport()
    masks = sorted(folder.rglob("*.png"))
    for done, path in enumerate(masks):
        check_stop(should_stop)
        relative = path.relative_to(folder).as_posix()
        record = matcher.find(relative)
        if record is None:
            report.skipped.append(f"{relative}: no image with that path or name in the project")
        else:
            try:
                indices = read_voc_mask(path, (record.width, record.height))
                labels = ids_from_indices(indices, class_ids, source.unlabeled, project)
                if fill_id is not None:
                    labels[labels == project.unlabeled_value] = fill_id
                status = import_status(options, source.statuses.get(relative[: -len(".png")]))
                store_imported(project, record, labels, options, report, status)
            except FormatError as error:
                report.skipped.append(f"{relative}: {error}")
        yield Progress(done + 1, len(masks), relative)
    return report  # fmt: skip


def import_voc(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import VOC ``SegmentationClass`` masks (palette or grayscale PNG indices)."""
    folder = _segmentation_folder(Path(source))
    return (yield from import_index_masks(project, folder, voc_class_names(folder, options), options, should_stop))  # fmt: skip
