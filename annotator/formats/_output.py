"""Writing export folders safely: every file through a temporary name and a rename, images in
display orientation, and a marker file so an export inside a project never becomes its images."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from annotator.project import Project
from annotator.project._atomic import (  # the exporters write through the project's writer
    TEMP_SUFFIX,
    write_bytes_atomic,
)

#: Written into every export folder; the project's folder scan skips directories holding it.
EXPORT_MARKER = ".annotator-export"

_PIL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
                ".bmp": "BMP", ".webp": "WEBP"}  # fmt: skip


def mark_export_folder(folder: Path, project: Project) -> None:
    """Write :data:`EXPORT_MARKER` into ``folder`` -- unless ``folder`` is the project folder
    itself or holds it (marking it would hide the whole project from its own scan)."""
    folder = Path(folder)
    root = Path(project.root).resolve()
    resolved = folder.resolve()
    if resolved == root or root.is_relative_to(resolved):
        return
    write_bytes_atomic(folder / EXPORT_MARKER, b"Written by annotator export; not project images.\n")  # fmt: skip


def write_upright_image(source: Path, target: Path) -> None:
    """Write ``source`` to ``target`` atomically so that every loader sees it in display
    orientation: copied byte for byte when it has no EXIF rotation, otherwise decoded upright
    (EXIF applied) and re-encoded in ``target``'s format without the rotation tag (JPEG at
    quality 95). ``target`` naming ``source`` itself (an export into the project folder) is left
    alone. Raises :class:`annotator.errors.ImageReadError` for unreadable images."""
    if Path(target).resolve() == Path(source).resolve():
        return
    if exif_orientation(source) == 1:
        write_bytes_atomic(target, Path(source).read_bytes())
        return
    from PIL import Image

    from annotator.imageio import load_image

    buffer = io.BytesIO()
    fmt = _PIL_FORMATS.get(target.suffix.lower(), "PNG")
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(load_image(source)).save(buffer, format=fmt, **extra)
    write_bytes_atomic(target, buffer.getvalue())


def exif_orientation(path: Path) -> int:
    """The EXIF orientation tag of an image file (1 = upright or none; 1 also when unreadable,
    the copy then fails the same way the original would)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(0x0112, 1) or 1)
    except (OSError, ValueError, SyntaxError):
        return 1


def sweep_export_temps(folder: Path) -> int:
    """Delete temporary files (``.NAME.*.tmp``) a killed earlier export left in ``folder`` --
    only when ``folder`` carries :data:`EXPORT_MARKER` (so a project's own files are never
    touched). Returns how many were removed."""
    folder = Path(folder)
    if not (folder / EXPORT_MARKER).is_file():
        return 0
    removed = 0
    for temp in folder.rglob(f".*{TEMP_SUFFIX}"):
        if ".annotator" in temp.relative_to(folder).parts or not temp.is_file():
            continue
        with contextlib.suppress(OSError):
            temp.unlink()
            removed += 1
    return removed


def prepare_export_folders(project: Project, *folders: Path) -> None:
    """Before an export writes anything: mark each folder (so a half-written export is never
    scanned as project images) and sweep temporary files an earlier killed export left."""
    for folder in folders:
        mark_export_folder(folder, project)
        sweep_export_temps(folder)
