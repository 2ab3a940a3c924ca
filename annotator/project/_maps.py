"""Label map I/O of :class:`~annotator.project.Project`: human labels and proposals on disk.

Pixels hold class ids. What "not labelled" is belongs to each *file*: its metadata says so (see
``_labelfile``), and a file without metadata uses 255 (8-bit) or 65535 (16-bit). So a map stored
as 8-bit before the project switched to 16-bit maps (class id 255 exists) keeps reading 255 as
unlabelled, never as class 255, and nothing needs converting at the switch.

A stored id that is neither a class nor a retired (aliased) class means the database lost it:
the class is restored from the file's own table (or as a named placeholder) and reported in
:meth:`list_problems`; a read-only project raises :class:`LabelFileError`. Never silently
unlabelled.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from annotator.errors import LabelFileError, ProjectError
from annotator.project._atomic import move_atomic
from annotator.project._base import LABELS, PROPOSALS
from annotator.project._classes import ClassOps
from annotator.project._labelfile import (
    LabelMeta,
    default_unlabeled,
    read_label_file_meta,
    write_label_file,
)
from annotator.project.records import UNLABELED_U8, UNLABELED_U16, ImageRecord, Problem

log = logging.getLogger(__name__)


def check_shape(label_map: np.ndarray, record: ImageRecord, relpath: str) -> None:
    expected = (record.height, record.width)
    if label_map.ndim != 2 or (record.width > 0 and label_map.shape != expected):
        raise LabelFileError(
            f"The label map for {relpath} is {label_map.shape[::-1]} (width, height) but the "
            f"image is {record.width} x {record.height}; label maps must match the image."
        )


def store_hash(conn: Any, relpath: str, digest: str | None) -> None:
    if digest:
        conn.execute(
            "UPDATE images SET content_hash = ? WHERE relpath = ? AND content_hash = ''",
            (digest, relpath),
        )


class LabelMaps(ClassOps):
    """Reading and writing label maps and proposals; quarantine of damaged files."""

    # ------------------------------------------------------------------ dtype and lookup

    @property
    def label_dtype(self) -> np.dtype:
        """``uint8`` while every class id ever used is <= 254, else ``uint16``."""
        next_id = int(self._meta("next_class_id"))
        return np.dtype(np.uint8) if next_id <= UNLABELED_U8 else np.dtype(np.uint16)

    @property
    def unlabeled_value(self) -> int:
        """The "not labelled" pixel value of :attr:`label_dtype` (255 or 65535)."""
        return UNLABELED_U8 if self.label_dtype == np.uint8 else UNLABELED_U16

    def _lut(self, source: np.dtype, unlabeled: int) -> tuple[np.ndarray, np.ndarray]:
        """``(lut, known)`` for files of dtype ``source`` whose "not labelled" is ``unlabeled``:
        stored value -> current class id, and whether the value means anything at all."""
        key = (np.dtype(source), int(unlabeled))
        with self._mutex:
            if key not in self._luts:
                self._luts[key] = self._build_lut(*key)
            return self._luts[key]

    def _build_lut(self, source: np.dtype, unlabeled: int) -> tuple[np.ndarray, np.ndarray]:
        size = int(np.iinfo(source).max) + 1
        lut = np.full(size, self.unlabeled_value, dtype=self.label_dtype)
        known = np.zeros(size, dtype=bool)
        for (class_id,) in self._query("SELECT id FROM classes"):
            if class_id < size:
                lut[class_id], known[class_id] = class_id, True
        for old, new in self._query("SELECT old_id, new_id FROM class_alias"):
            if old < size:
                lut[old], known[old] = (self.unlabeled_value if new is None else new), True
        if 0 <= unlabeled < size:  # after the classes: an 8-bit file's 255 is never class 255
            lut[unlabeled], known[unlabeled] = self.unlabeled_value, True
        return lut, known

    def _to_current(self, relpath: str, stored: np.ndarray, meta: LabelMeta | None) -> np.ndarray:
        """Stored pixels -> current class ids (restoring classes the database lost)."""
        unlabeled = meta.unlabeled if meta else default_unlabeled(stored.dtype)
        lut, known = self._lut(stored.dtype, unlabeled)
        if not known[stored].all():
            unknown = sorted({int(v) for v in np.unique(stored) if not known[v]})
            self._restore_ids(relpath, unknown, meta)
            lut, known = self._lut(stored.dtype, unlabeled)
        return lut[stored]

    def _restore_ids(self, relpath: str, unknown: list[int], meta: LabelMeta | None) -> None:
        if self.read_only:
            raise LabelFileError(
                f"The labels of {relpath} hold class ids {unknown[:10]} that the project "
                "database does not know (it was lost or replaced by an older copy). Nothing was "
                "changed; open the project for editing once to restore those classes from the "
                "label files."
            )
        for class_id in unknown:
            described = meta.classes.get(class_id) if meta else None
            info = self._restore_class(class_id, described)
            how = "as the label file names it" if described else "under a placeholder name"
            self._report(
                relpath,
                f"Class id {class_id} is used by the labels of {relpath} but was missing from the "
                f"project database (lost, or an older copy); it was restored {how} as "
                f"{info.name!r}. Check the class list (rename or merge it if needed).",
            )

    # ------------------------------------------------------------------ reading

    def _read_map(self, kind: str, relpath: str) -> tuple[np.ndarray, LabelMeta | None]:
        """Stored pixels and metadata; :class:`LabelFileError` if missing or damaged."""
        return read_label_file_meta(self._map_path(kind, relpath))

    def _load_map(self, kind: str, relpath: str) -> np.ndarray | None:
        record = self.get_image(relpath)
        if not (record.has_labels if kind == LABELS else record.has_proposal):
            return None
        try:
            stored, meta = self._read_map(kind, relpath)
            check_shape(stored, record, relpath)
        except LabelFileError as error:
            self._quarantine(kind, relpath, error)
            return None
        return self._to_current(relpath, stored, meta)

    def load_labels(self, relpath: str) -> np.ndarray | None:
        """Human labels as ``[H, W]`` :attr:`label_dtype` class ids (``unlabeled_value`` = not
        labelled), or ``None`` if the image has none. A damaged file is quarantined, reported in
        :meth:`list_problems`, and ``None`` is returned. Ids the database lost are restored as
        classes (and reported); read-only, they raise :class:`LabelFileError`."""
        return self._load_map(LABELS, relpath)

    def load_proposal(self, relpath: str) -> np.ndarray | None:
        """The stored model proposal (same convention as :meth:`load_labels`), or ``None``."""
        return self._load_map(PROPOSALS, relpath)

    # ------------------------------------------------------------------ writing

    def _validated(
        self, relpath: str, label_map: np.ndarray
    ) -> tuple[np.ndarray, str | None, ImageRecord]:
        """The map in storage form, the content hash to store with it (see
        :meth:`_missing_hash`) and the image's record."""
        record = self.get_image(relpath)
        label_map = np.asarray(label_map)
        if label_map.dtype.kind not in "iu":
            raise ProjectError(f"Label maps hold integer class ids, not {label_map.dtype}.")
        check_shape(label_map, record, relpath)
        return self._normalize_ids(label_map), self._missing_hash(record), record

    def _normalize_ids(self, label_map: np.ndarray) -> np.ndarray:
        unlabeled_in = UNLABELED_U8 if label_map.dtype == np.uint8 else UNLABELED_U16
        values = np.unique(label_map)
        known = {c.id for c in self.list_classes()} | {unlabeled_in, -1}
        unknown = [int(v) for v in values if int(v) not in known]
        if unknown:
            raise ProjectError(
                f"The label map holds class ids {unknown[:10]} that are not classes of this "
                "project; add the classes first (list_classes gives the ids)."
            )
        out = label_map.astype(self.label_dtype)
        out[(label_map == unlabeled_in) | (label_map == -1)] = self.unlabeled_value
        return out

    def _meta_for(
        self, relpath: str, stored: np.ndarray, status: str, digest: str | None
    ) -> LabelMeta:
        """What a label file written now says about itself (only the classes it holds);
        ``digest``: the image's content hash if the database has none yet."""
        rows = self._query("SELECT content_hash, size FROM images WHERE relpath = ?", (relpath,))
        image_hash, size = (digest or rows[0][0], rows[0][1]) if rows else (digest or "", 0)
        unlabeled = default_unlabeled(stored.dtype)
        present = {int(v) for v in np.unique(stored)} - {unlabeled}
        classes = {
            c.id: {"name": c.name, "synonyms": list(c.synonyms), "color": list(c.color),
                   "novel": c.novel}
            for c in self.list_classes() if c.id in present
        }  # fmt: skip
        return LabelMeta(unlabeled, relpath, image_hash, status, classes, int(size))

    def _write_map(self, kind: str, relpath: str, stored: np.ndarray, meta: LabelMeta) -> None:
        what = f"the {'labels' if kind == LABELS else 'proposal'} of {relpath}"
        try:
            write_label_file(self._map_path(kind, relpath), stored, meta)
        except OSError as error:
            raise self._write_failed(what, error) from error

    def save_labels(self, relpath: str, label_map: np.ndarray, status: str = "edited") -> None:
        """Store human labels for an image: ``[H, W]`` integer class ids, the image's display
        size; 255 (uint8 maps) or 65535 (other dtypes) or -1 mark unlabeled pixels. ``status``
        is ``edited`` or ``reviewed``. The file write is atomic; a full disk raises
        :class:`~annotator.errors.DiskFullError` and keeps the labels saved before."""
        if status not in ("edited", "reviewed"):
            raise ProjectError(f"Saved labels have status 'edited' or 'reviewed', not {status!r}.")
        self._require_writable()
        stored, digest, _ = self._validated(relpath, label_map)
        meta = self._meta_for(relpath, stored, status, digest)
        self._write_map(LABELS, relpath, stored, meta)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE images SET has_labels = 1, status = ?, updated_at = ? WHERE relpath = ?",
                (status, time.time(), relpath),
            )
            store_hash(conn, relpath, digest)

    def delete_labels(self, relpath: str) -> None:
        """Remove an image's human labels (status falls back to ``proposed`` or ``new``)."""
        record = self.get_image(relpath)
        self._require_writable()
        self._map_path(LABELS, relpath).unlink(missing_ok=True)
        status = "proposed" if record.has_proposal else "new"
        with self._transaction() as conn:
            conn.execute(
                "UPDATE images SET has_labels = 0, status = ?, updated_at = ? WHERE relpath = ?",
                (status, time.time(), relpath),
            )

    def save_proposal(
        self, relpath: str, label_map: np.ndarray, mean_confidence: float | None
    ) -> None:
        """Store a model proposal (class ids, as :meth:`save_labels`). A ``new`` image becomes
        ``proposed``; images a person edited or reviewed keep their status and labels."""
        self._require_writable()
        stored, digest, _ = self._validated(relpath, label_map)
        meta = self._meta_for(relpath, stored, "", digest)
        self._write_map(PROPOSALS, relpath, stored, meta)
        confidence = None if mean_confidence is None else float(mean_confidence)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE images SET has_proposal = 1, mean_confidence = ?, updated_at = ?, "
                "status = CASE status WHEN 'new' THEN 'proposed' ELSE status END WHERE relpath = ?",
                (confidence, time.time(), relpath),
            )  # fmt: skip
            store_hash(conn, relpath, digest)

    def accept_proposal(self, relpath: str, status: str = "reviewed") -> np.ndarray:
        """Copy the proposal into the human labels (a person accepted it) and return it."""
        proposal = self.load_proposal(relpath)
        if proposal is None:
            raise ProjectError(f"{relpath} has no proposal to accept; run the model on it first.")
        self.save_labels(relpath, proposal, status=status)
        return proposal

    # ------------------------------------------------------------------ class retirement

    def _rewrite_maps_with(self, class_id: int) -> None:
        """Rewrite the stored maps that still hold ``class_id`` (each file atomically)."""
        rows = self._query("SELECT relpath, has_labels, has_proposal FROM images")
        for row in rows:
            for kind, flag in ((LABELS, row["has_labels"]), (PROPOSALS, row["has_proposal"])):
                if flag:
                    self._rewrite_one(kind, row["relpath"], class_id)

    def _rewrite_one(self, kind: str, relpath: str, class_id: int) -> None:
        try:
            stored, meta = self._read_map(kind, relpath)
        except LabelFileError as error:
            self._quarantine(kind, relpath, error)
            return
        unlabeled = meta.unlabeled if meta else default_unlabeled(stored.dtype)
        if class_id == unlabeled or class_id > np.iinfo(stored.dtype).max:
            return  # the file cannot hold this class
        if (stored == class_id).any():
            current = self._to_storage(self._to_current(relpath, stored, meta))
            status = meta.status if meta else ""
            self._write_map(kind, relpath, current, self._meta_for(relpath, current, status, None))
            with self._transaction() as conn:  # the file is as new as the database says
                conn.execute(
                    "UPDATE images SET updated_at = ? WHERE relpath = ?", (time.time(), relpath)
                )

    def _to_storage(self, label_map: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(label_map.astype(self.label_dtype, copy=False))

    # ------------------------------------------------------------------ problems

    def _report(self, relpath: str, message: str) -> None:
        """Record something the store repaired or set aside (kept in the database)."""
        log.warning(message)
        if self.read_only:
            self._session_problems.append(Problem(time.time(), relpath, message))
            return
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO problems (at, relpath, message) VALUES (?, ?, ?)",
                (time.time(), relpath, message),
            )

    def _quarantine(self, kind: str, relpath: str, error: Exception) -> None:
        message = f"The stored {kind[:-1]} map of {relpath} is damaged: {error}"
        if self.read_only:
            self._report(relpath, message)
            return
        target = self._quarantine_path(kind, relpath)
        move_atomic(self._map_path(kind, relpath), target)
        column = "has_labels" if kind == LABELS else "has_proposal"
        with self._transaction() as conn:
            conn.execute(f"UPDATE images SET {column} = 0 WHERE relpath = ?", (relpath,))
        self._report(
            relpath, f"{message} It was moved to {target}; label the image again or restore it."
        )

    def _quarantine_path(self, kind: str, relpath: str) -> Any:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.sidecar_path("quarantine", stamp, kind, f"{relpath}.png")

    def list_problems(self) -> list[Problem]:
        """What the store repaired or set aside (quarantined files, restored classes, labels
        recovered from their files), oldest first."""
        rows = self._query("SELECT at, relpath, message FROM problems ORDER BY id")
        return [Problem(r["at"], r["relpath"], r["message"]) for r in rows] + self._session_problems
