"""labelme / X-AnyLabeling JSON import: one ``.json`` per image.

Shapes are painted in file order (later shapes on top), rasterised as labelme's own converters
do (see :mod:`annotator.formats._shapes`); label ``__ignore__`` paints "unlabeled". The image is
found from ``imagePath`` (relative to the JSON file), else from the JSON file's path under the
imported folder, else from its name. A file that embeds its image (``imageData``) but whose
image is not in the project gets that image written into the project folder (beside nothing
else: ``<project>/<imagePath file name>``) and is imported onto it.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path, PurePosixPath
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
    resolve_classes_with_metadata,
    store_imported,
)
from annotator.formats._shapes import shape_mask, shape_type
from annotator.formats._validate import as_text, check_declared_size, read_json_file
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import ImageRecord, Project

IGNORE_LABEL = "__ignore__"


def _read(path: Path) -> dict[str, Any]:
    document = read_json_file(path, "labelme file")
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise FormatError("not a labelme file (no list of 'shapes')")
    return document


class _Importer:
    """State of one labelme import: the matcher (rebuilt when an embedded image is added)."""

    def __init__(self, project: Project, source: Path, options: ImportOptions) -> None:
        self.project, self.source, self.options = project, source, options
        self.matcher = ImageMatcher(project)
        self.fill_id = fill_class_id(project, options)
        self.report = TransferReport()

    def find_record(self, path: Path, document: dict[str, Any]) -> ImageRecord | None:
        image_path = document.get("imagePath")
        candidates: list[str] = []
        if isinstance(image_path, str) and image_path.strip():
            resolved = (path.parent / image_path.replace("\\", "/")).resolve()
            if resolved.is_relative_to(self.project.root):
                candidates.append(resolved.relative_to(self.project.root).as_posix())
            candidates.append(image_path)
        if self.source.is_dir() and path.is_relative_to(self.source):
            candidates.append(path.relative_to(self.source).with_suffix("").as_posix())
        candidates.append(path.stem)
        for candidate in candidates:
            found = self.matcher.find(candidate)
            if found is not None:
                return found
        return None

    def import_file(self, path: Path) -> None:
        document = _read(path)
        record = self.find_record(path, document)
        if record is None:
            record = self.add_embedded_image(path, document)
        check_declared_size(document.get("imageWidth"), document.get("imageHeight"), record.width, record.height)  # fmt: skip
        meta = document.get("annotator") if isinstance(document.get("annotator"), dict) else {}
        label_map = self.label_map(path, document, record, meta.get("classes") or {})
        status = import_status(self.options, meta.get("status"))
        store_imported(self.project, record, label_map, self.options, self.report, status)

    def label_map(
        self, path: Path, document: dict[str, Any], record: ImageRecord, metadata: Any
    ) -> np.ndarray | None:
        height, width = record.height, record.width
        canvas, left_out = LabelCanvas(height, width), []
        for number, shape in enumerate(document["shapes"]):
            try:
                label, mask = self.shape(shape, height, width, metadata)
            except FormatError as error:
                left_out.append(f"shape #{number + 1}: {error}")
                continue
            canvas.paint(mask, label)
        for line in left_out[:20]:
            self.report.skipped.append(f"{path.name}: {line}; left out")
        if len(left_out) > 20:
            self.report.skipped.append(f"{path.name}: {len(left_out) - 20} more shapes left out")
        return canvas.finish(self.project, self.fill_id)

    def shape(self, shape: Any, height: int, width: int, metadata: Any) -> tuple[int | None, np.ndarray]:  # fmt: skip
        """The class id (``None`` = ignore) and ``[H, W]`` bool mask of one shape."""
        if not isinstance(shape, dict):
            raise FormatError("not an object")
        label = as_text(shape.get("label"), "its label")
        mask = shape_mask(shape, height, width, self.options.line_width, self.options.point_radius)
        if label == IGNORE_LABEL:
            return None, mask
        metadata = metadata if isinstance(metadata, dict) else {}
        ids = resolve_classes_with_metadata(self.project, [label], metadata)
        return ids[label], mask

    def add_embedded_image(self, path: Path, document: dict[str, Any]) -> ImageRecord:
        """Write the file's embedded ``imageData`` into the project folder and return its
        record; :class:`FormatError` saying why not when it cannot."""
        data = document.get("imageData")
        wanted = document.get("imagePath")
        if not isinstance(data, str) or not data:
            raise FormatError(f"no image in the project for imagePath {wanted!r}, and the file embeds none (imageData is empty)")  # fmt: skip
        if self.project.read_only:
            raise FormatError("its image is only embedded (imageData) and the project is open read-only, so it cannot be added")  # fmt: skip
        raw, suffix = _decode_embedded(data)
        name = _embedded_name(wanted, path, suffix)
        target = Path(self.project.root) / name
        if target.exists() and target.read_bytes() != raw:
            raise FormatError(f"its embedded image would be written to {name}, but a different file of that name exists")  # fmt: skip
        from annotator.formats._output import write_bytes_atomic

        write_bytes_atomic(target, raw)
        self.project.refresh()
        self.matcher = ImageMatcher(self.project)
        record = self.matcher.records.get(name)
        if record is None:
            raise FormatError(f"its embedded image was written to {name} but the project does not list it")  # fmt: skip
        self.report.notes.append(f"{path.name}: its embedded image was added to the project as {name}")  # fmt: skip
        return self.project.get_image(name)


def _decode_embedded(data: str) -> tuple[bytes, str]:
    """The image bytes of base64 ``imageData`` and the suffix of their format."""
    from PIL import Image, UnidentifiedImageError

    from annotator.imageio import max_pixels_limit

    suffixes = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}
    try:
        raw = base64.b64decode(data, validate=False)
        with Image.open(io.BytesIO(raw)) as image:
            if image.width * image.height > max_pixels_limit():
                raise FormatError(f"its embedded image is {image.width} x {image.height}, too large")  # fmt: skip
            kind = image.format
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:  # fmt: skip
        raise FormatError(f"its embedded image (imageData) cannot be read: {error}") from error
    if kind not in suffixes:
        raise FormatError(f"its embedded image is {kind}, which annotator does not open")
    return raw, suffixes[kind]


def _embedded_name(wanted: Any, path: Path, suffix: str) -> str:
    """A plain file name in the project folder: ``imagePath``'s name (never a path that leaves
    the folder), else the JSON file's stem; the suffix of the embedded format."""
    stem = PurePosixPath(wanted.replace("\\", "/")).stem if isinstance(wanted, str) else ""
    stem = "".join(c for c in stem if c.isalnum() or c in "-_. ").strip(". ") or path.stem
    return f"{stem[:200]}{suffix}"


def import_labelme(
    project: Project,
    source: Path,
    options: ImportOptions = DEFAULT_IMPORT,
    should_stop: ShouldStop = never_stop,
) -> Job[TransferReport]:
    """Import every labelme ``*.json`` under ``source`` (a folder or one file)."""
    source = Path(source)
    files = list_json_sources(source)
    importer = _Importer(project, source, options)
    for done, path in enumerate(files):
        check_stop(should_stop)
        try:
            importer.import_file(path)
        except FormatError as error:
            importer.report.skipped.append(f"{path}: {error}")
        yield Progress(done + 1, len(files), path.name)
    return importer.report


__all__ = ["IGNORE_LABEL", "import_labelme", "shape_mask", "shape_type"]
