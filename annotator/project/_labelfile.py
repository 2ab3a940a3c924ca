"""Label maps on disk: lossless single-channel PNGs (``uint8``, or ``uint16`` beyond 254 classes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotator.errors import LabelFileError
from annotator.project._atomic import write_bytes_atomic


def encode_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a ``[H, W]`` ``uint8``/``uint16`` array, pixel values kept exactly."""
    import cv2

    ok, buffer = cv2.imencode(".png", label_map, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise LabelFileError("The label map could not be encoded as PNG.")
    return buffer.tobytes()


def decode_png(data: bytes, path: Path) -> np.ndarray:
    """Decode PNG bytes back to a ``[H, W]`` ``uint8``/``uint16`` array.

    Raises :class:`LabelFileError` when the bytes are not a complete single-channel PNG.
    """
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format != "PNG" or image.mode not in ("L", "P", "I;16", "I;16B", "I"):
                raise LabelFileError(f"{path} is not a single-channel PNG label map.")
            array = np.asarray(image)
    except LabelFileError:
        raise
    except Exception as error:
        raise LabelFileError(f"{path} is damaged ({error}).") from error
    if array.dtype == np.int32:
        array = array.astype(np.uint16)
    return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("="), copy=False))


def read_label_file(path: Path) -> np.ndarray:
    """Read a stored label map; :class:`LabelFileError` if missing or damaged."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LabelFileError(f"{path} cannot be read ({error}).") from error
    return decode_png(data, path)


def write_label_file(path: Path, label_map: np.ndarray) -> None:
    """Write a label map atomically (old or new file survives a crash, never a partial one)."""
    write_bytes_atomic(path, encode_png(np.ascontiguousarray(label_map)))
