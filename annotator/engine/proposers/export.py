"""Writing a zegformer proposal's segments next to its label PNG (``annotator propose``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from annotator.engine.proposers.segments import SegmentSet

SEGMENTS_FOLDER = "segments"


def save_segments(out_dir: Path, relative: Path, segments: SegmentSet) -> tuple[Path, Path]:
    """Write ``segments/<relative>.png`` (16-bit grayscale: segment index per pixel) and
    ``segments/<relative>.json`` (:meth:`SegmentSet.to_json`) under ``out_dir``."""
    base = Path(out_dir) / SEGMENTS_FOLDER / relative
    base.parent.mkdir(parents=True, exist_ok=True)
    index_path = base.with_suffix(".png")
    json_path = base.with_suffix(".json")
    Image.fromarray(segments.index_map.astype(np.uint16)).save(index_path)
    json_path.write_text(json.dumps(segments.to_json(), indent=1) + "\n", encoding="utf-8")
    return index_path, json_path


def load_segment_index(path: Path) -> np.ndarray:
    """The index map ``[H, W]`` int64 written by :func:`save_segments`."""
    return np.asarray(Image.open(path)).astype(np.int64)
