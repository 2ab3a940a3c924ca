"""Text embeddings on disk: a class name costs its 80 template passes once per machine.

One folder per (model, weights identity, activation, template set) under ``<cache>/text/``, one
``.npy`` file per name (named by a digest of the name). Files are written to a unique temporary
name and renamed, so a reader sees a whole file or none and concurrent writers of the same name
just replace each other with equal content. A file that cannot be read, has the wrong shape, is
not finite or not unit length is ignored (and rewritten), never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

#: Bumped when the embedding recipe changes (then old files are simply not found).
FORMAT = 1


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class TextStore:
    """Per-name embeddings ``[D]`` float32 (L2-normalised template means) kept in ``folder``."""

    def __init__(self, root: Path, model_key: str, templates: Sequence[str], dim: int) -> None:
        key = json.dumps([FORMAT, model_key, list(templates)], ensure_ascii=False)
        self.folder = Path(root) / _digest(key)
        self.dim = dim
        self._key = key

    def _path(self, name: str) -> Path:
        return self.folder / f"{_digest(name)}.npy"

    def get(self, name: str) -> Tensor | None:
        """The stored embedding of ``name``, or ``None`` when absent or not valid."""
        try:
            with open(self._path(name), "rb") as handle:
                array = np.load(handle, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.dtype != np.float32 or array.shape != (self.dim,):
            return None
        if not np.isfinite(array).all() or abs(float(np.linalg.norm(array)) - 1.0) > 1e-3:
            return None
        return torch.from_numpy(array.copy())

    def put(self, name: str, vector: Tensor) -> None:
        """Store ``vector`` ``[D]`` for ``name``; a failure to write (full disk, read-only cache)
        only means it is computed again next time."""
        with contextlib.suppress(OSError):
            self._write(self._path(name), vector.detach().float().cpu().numpy())

    def _write(self, path: Path, array: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "key.json"
        if not meta.exists():
            self._atomic(meta, self._key.encode("utf-8"))
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, array.astype(np.float32), allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _atomic(self, path: Path, data: bytes) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
