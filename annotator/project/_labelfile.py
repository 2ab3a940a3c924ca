"""Label maps on disk: lossless single-channel PNGs (``uint8``, or ``uint16`` beyond 254 classes).

Every map the store writes describes itself in a ``tEXt`` chunk (key :data:`META_KEY`, JSON) put
right after the PNG header, so it is read without decoding pixels::

    {"v": 1, "unlabeled": 255, "image": "sub/c.png", "image_hash": "<blake2b>",
     "image_bytes": 81234, "status": "edited", "classes": {"3": {"name": "car", "synonyms": [], "color": [..],
     "novel": false}}}

``unlabeled`` is the pixel value meaning "not labelled" *in this file* (an 8-bit file written
before the project switched to 16-bit maps keeps 255 = unlabelled). ``classes`` names every id
present in the map, so a lost or older ``project.db`` is rebuilt from the files. Files without
the chunk (older versions) use 255 for 8-bit and 65535 for 16-bit files.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import LabelFileError, ProjectError
from annotator.project._atomic import write_bytes_atomic
from annotator.project._paths import open_nofollow

META_KEY = "annotator-label-map"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = len(_PNG_SIGNATURE) + 8 + 13 + 4  # signature, IHDR length+type, data, crc


@dataclass(frozen=True)
class LabelMeta:
    """What a label file says about itself (see the module docstring); ``classes`` maps a class
    id to ``{"name", "synonyms", "color", "novel"}``."""

    unlabeled: int
    image: str = ""
    image_hash: str = ""
    status: str = ""
    classes: dict[int, dict[str, Any]] = field(default_factory=dict)
    image_bytes: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1, "unlabeled": self.unlabeled, "image": self.image,
                "image_hash": self.image_hash, "image_bytes": self.image_bytes,
                "status": self.status,
                "classes": {str(k): v for k, v in sorted(self.classes.items())},
            },
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> LabelMeta:
        data = json.loads(text)
        classes = {int(k): dict(v) for k, v in dict(data.get("classes", {})).items()}
        return cls(
            int(data["unlabeled"]), str(data.get("image", "")), str(data.get("image_hash", "")),
            str(data.get("status", "")), classes, int(data.get("image_bytes", 0)),
        )  # fmt: skip


def default_unlabeled(dtype: np.dtype) -> int:
    """ "Not labelled" of a file without metadata: 255 for ``uint8``, 65535 for ``uint16``."""
    return 255 if np.dtype(dtype) == np.uint8 else 65535


def encode_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a ``[H, W]`` ``uint8``/``uint16`` array, pixel values kept exactly."""
    import cv2

    ok, buffer = cv2.imencode(".png", label_map, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise LabelFileError("The label map could not be encoded as PNG.")
    return buffer.tobytes()


def _text_chunk(key: str, text: str) -> bytes:
    body = b"tEXt" + key.encode("latin-1") + b"\0" + text.encode("latin-1")
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))


def encode_label_png(label_map: np.ndarray, meta: LabelMeta) -> bytes:
    """:func:`encode_png` with ``meta`` in a ``tEXt`` chunk right after the header."""
    data = encode_png(label_map)
    return data[:_IHDR_END] + _text_chunk(META_KEY, meta.to_json()) + data[_IHDR_END:]


def _open_png(data: bytes, path: Path) -> Any:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
    except Exception as error:
        raise LabelFileError(f"{path} is damaged ({error}).") from error
    if image.format != "PNG" or image.mode not in ("L", "P", "I;16", "I;16B", "I"):
        raise LabelFileError(f"{path} is not a single-channel PNG label map.")
    return image


def _meta_of(image: Any, path: Path) -> LabelMeta | None:
    text = image.info.get(META_KEY)
    if text is None:
        return None
    try:
        return LabelMeta.from_json(text)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise LabelFileError(f"{path} has damaged label metadata ({error}).") from error


def decode_label_png(data: bytes, path: Path) -> tuple[np.ndarray, LabelMeta | None]:
    """``[H, W]`` ``uint8``/``uint16`` pixels and the file's metadata (``None`` if it has none).

    Raises :class:`LabelFileError` when the bytes are not a complete single-channel PNG.
    """
    image = _open_png(data, path)
    try:
        with image:
            image.load()
            array = np.asarray(image)
    except Exception as error:
        raise LabelFileError(f"{path} is damaged ({error}).") from error
    if array.dtype == np.int32:
        array = array.astype(np.uint16)
    array = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("="), copy=False))
    return array, _meta_of(image, path)


def decode_png(data: bytes, path: Path) -> np.ndarray:
    """Decode PNG bytes back to a ``[H, W]`` ``uint8``/``uint16`` array (no metadata)."""
    return decode_label_png(data, path)[0]


def _read_bytes(path: Path) -> bytes:
    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except (OSError, ProjectError) as error:
        raise LabelFileError(f"{path} cannot be read ({error}).") from error
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def read_label_file(path: Path) -> np.ndarray:
    """Read a stored label map; :class:`LabelFileError` if missing, damaged or a symlink."""
    return decode_label_png(_read_bytes(path), path)[0]


def read_label_file_meta(path: Path) -> tuple[np.ndarray, LabelMeta | None]:
    """Pixels and metadata of a stored label map (see :func:`decode_label_png`)."""
    return decode_label_png(_read_bytes(path), path)


def read_meta_only(path: Path) -> LabelMeta | None:
    """The metadata of a label file without decoding its pixels (``None``: an older file)."""
    with _open_png(_read_bytes(path), path) as image:
        return _meta_of(image, path)


def write_label_file(path: Path, label_map: np.ndarray, meta: LabelMeta | None = None) -> None:
    """Write a label map atomically (old or new file survives a crash, never a partial one),
    with ``meta`` inside it when given."""
    label_map = np.ascontiguousarray(label_map)
    data = encode_png(label_map) if meta is None else encode_label_png(label_map, meta)
    write_bytes_atomic(path, data)
