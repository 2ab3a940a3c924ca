"""The one way every part of annotator reads images.

``load_image`` returns what the models and the canvas expect: an ``HxWx3 uint8`` RGB array in the
image's *display* orientation (EXIF orientation applied), whatever the file holds: grayscale,
RGBA, palette, CMYK, 16-bit or float. ``read_image_size`` reads headers only (used by folder scans,
which must never decode pixels). Failures raise :class:`~annotator.errors.ImageReadError` naming the
file and the reason.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from annotator.errors import ImageReadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})

#: Largest image (in pixels) read by default: 12000 x 9000 with headroom. Pillow's own guard
#: (about 89 Mpx) is a defence against decompression bombs from the web; a labelling tool opens
#: large aerial and microscopy images on purpose, so the limit is raised deliberately and can be
#: changed with the ``ANNOTATOR_MAX_PIXELS`` environment variable.
DEFAULT_MAX_PIXELS = 250_000_000

# EXIF orientations 5-8 swap width and height.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112
# Pillow's bomb guard is a process-wide setting. It is raised once, here, to our limit (some
# decoders, e.g. TIFF, check it again while loading); it is switched off only while a header is
# parsed (under this lock, so threads cannot leave it off), so scans report sizes of huge images
# instead of failing; load_image then enforces the limit explicitly.
_GUARD_LOCK = threading.Lock()


def max_pixels_limit() -> int:
    """The pixel limit in force: ``ANNOTATOR_MAX_PIXELS`` if set, else :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get("ANNOTATOR_MAX_PIXELS", "")
    return int(value) if value.strip().isdigit() else DEFAULT_MAX_PIXELS


Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels_limit())


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_image_files(root: str | Path, exclude: tuple[str, ...] = ()) -> list[str]:
    """Relative POSIX paths of the image files under ``root`` (recursive), sorted.

    Hidden folders (name starting with ``.``, e.g. the ``.annotator`` sidecar) and the folder names
    in ``exclude`` are skipped. Only names are looked at; no file is opened.
    """
    root = Path(root)
    found: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name in exclude:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif is_image_file(entry.name):
                found.append(Path(entry.path).relative_to(root).as_posix())
    found.sort()
    return found


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageReadError(path, "the file does not exist")
    if path.is_dir():
        raise ImageReadError(path, "it is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    try:
        with _GUARD_LOCK:
            previous_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = previous_limit
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file, or a format Pillow cannot read") from None
    except OSError as error:
        raise ImageReadError(path, f"the file is damaged or truncated ({error})") from error


def _orientation(image: Image.Image) -> int:
    if image.format == "PNG" and "exif" not in image.info:
        # Pillow's PNG getexif() decodes the whole image looking for an eXIf chunk after the
        # pixels; the PNG spec puts eXIf before them, so a header without one has none.
        return 1
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of a PNG from its IHDR chunk, or ``None`` to let Pillow decide (not a
    PNG, damaged, or an eXIf chunk that may rotate it). Reads a few bytes per chunk before the
    pixel data; a fast path for scanning folders of thousands of PNGs."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
            if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
                return None
            size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            while chunk := handle.read(8):
                if len(chunk) < 8 or chunk[4:8] == b"eXIf":
                    return None
                if chunk[4:8] == b"IDAT":
                    return size if size[0] > 0 and size[1] > 0 else None
                handle.seek(int.from_bytes(chunk[:4], "big") + 4, os.SEEK_CUR)
    except OSError:
        return None
    return None


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of the image as displayed (after EXIF orientation), from headers only."""
    path = Path(path)
    if path.suffix.lower() == ".png" and (size := _png_size(path)) is not None:
        return size
    with _open(path) as image:
        width, height = image.size
        if _orientation(image) in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
    return width, height


def _check_size(path: Path, image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageReadError(
            path,
            f"{width} x {height} pixels is over the limit of {max_pixels:,} pixels; "
            "set the ANNOTATOR_MAX_PIXELS environment variable to a larger number to open it",
        )


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map a high-bit-depth or float array linearly onto 0..255 (min -> 0, max -> 255)."""
    values = values.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    low, high = float(values[finite].min()), float(values[finite].max())
    scale = 255.0 / (high - low) if high > low else 0.0
    out = np.where(finite, (values - low) * scale, 0.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to an ``HxWx3 uint8`` RGB array.

    16-bit and 32-bit integer and float images are stretched linearly from their minimum to their
    maximum (their data often uses only part of the range, e.g. 12-bit microscopy); alpha is
    dropped; palette and CMYK images go through Pillow's own RGB conversion.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _stretch_to_uint8(np.asarray(image))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[:, :, :3])
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read ``path`` as an ``HxWx3 uint8`` RGB array in display orientation.

    Raises :class:`ImageReadError` for missing, empty, truncated, non-image or too-large files.
    """
    path = Path(path)
    limit = max_pixels_limit() if max_pixels is None else max_pixels
    try:
        with _open(path) as image:
            _check_size(path, image, limit)
            image.load()
            oriented = ImageOps.exif_transpose(image) if _orientation(image) != 1 else image
            return to_rgb8(oriented)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(path, f"the file is damaged or truncated ({error})") from error
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode it") from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(
            path, f"{error}; set ANNOTATOR_MAX_PIXELS before starting annotator to open it"
        ) from error
