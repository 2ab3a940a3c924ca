"""The project store: an image folder plus a sidecar folder holding all annotation state.

Layout of the sidecar (``<folder>/.annotator`` unless given)::

    project.db             SQLite (WAL): images, classes, class aliases, settings, problems
    lock                   pid + host of the process holding the project open for writing
    labels/<relpath>.png   human label maps (class ids; 255 / 65535 = unlabeled)
    proposals/<relpath>.png  model proposals, never ground truth until accepted or edited
    quarantine/...         damaged label files moved aside, with a problem recorded

Every file write is atomic and every database change is a transaction, so a process killed at
any instant leaves the old or the new state. Class ids are stable and never reused: renaming
rewrites nothing; merging and deleting record an alias (applied whenever a map is read) in one
transaction and then rewrite the stored maps one atomic file at a time, so a crash half way
through still reads correctly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import ImageReadError, JobCancelled, LabelFileError, ProjectError
from annotator.imageio import load_image
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import _scan
from annotator.project._atomic import move_atomic, remove_temp_files
from annotator.project._db import connect
from annotator.project._labelfile import read_label_file, write_label_file
from annotator.project._lock import ProjectLock
from annotator.project._palette import default_class_color
from annotator.project.records import (
    STATUSES,
    UNLABELED_U8,
    UNLABELED_U16,
    ClassInfo,
    ImageRecord,
    Problem,
)

log = logging.getLogger(__name__)

DEFAULT_SIDECAR = ".annotator"
LABELS, PROPOSALS = "labels", "proposals"
_MAX_CLASS_ID = UNLABELED_U16 - 1

_IMAGE_COLUMNS = (
    "relpath, width, height, content_hash, status, error, mean_confidence, updated_at, "
    "has_labels, has_proposal"
)
_SIZE_BATCH = 256
#: Unknown header sizes read at open: the first rows in path order, i.e. what a list view shows
#: first and where a viewer starts, so an unreadable one is marked before anyone picks it (ms).
_HEADERS_AT_OPEN = 64


def _class_info(row: Any) -> ClassInfo:
    return ClassInfo(
        row["id"], row["name"], tuple(json.loads(row["synonyms"])),
        tuple(json.loads(row["color"])), bool(row["novel"]), row["sort_order"],
    )  # fmt: skip


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    unknown = [value for value in wanted if value not in STATUSES]
    if unknown:
        raise ProjectError(f"Unknown status {unknown}; use one of {', '.join(STATUSES)}.")
    return wanted


class Project:
    """An open project. Create with :meth:`open`; use as a context manager or call :meth:`close`.

    Thread-safe: one instance may be shared by the GUI thread and worker threads.
    """

    def __init__(self, root: Path, sidecar: Path, read_only: bool) -> None:
        self.root = root
        self.sidecar = sidecar
        self.read_only = read_only
        self._mutex = threading.RLock()
        self._lock: ProjectLock | None = None
        self._conn: Any = None
        self._luts: dict[np.dtype, np.ndarray] = {}
        self._session_problems: list[Problem] = []

    # ----------------------------------------------------------------------------- open / close

    @classmethod
    def open(
        cls, folder: str | Path, sidecar: str | Path | None = None, read_only: bool = False
    ) -> Project:
        """Open ``folder`` (any image folder, searched recursively) as a project.

        Writers create the sidecar if needed, take the write lock (:class:`ProjectLockedError`
        names the process holding it; open with ``read_only=True`` to look anyway), finish or
        clean up what a killed process left, and reconcile the image table with the disk.
        """
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise ProjectError(f"{root} is not a folder; choose the folder that holds the images.")
        side = Path(sidecar).expanduser().resolve() if sidecar else root / DEFAULT_SIDECAR
        project = cls(root, side, read_only)
        try:
            project._start()
        except BaseException:
            project.close()
            raise
        return project

    def _start(self) -> None:
        if self.read_only:
            if not (self.sidecar / "project.db").exists():
                raise ProjectError(
                    f"{self.root} has no project data yet ({self.sidecar} is missing); "
                    "open it for editing once to create it."
                )
            self._conn = connect(self.sidecar / "project.db", read_only=True)
            return
        self.sidecar.mkdir(parents=True, exist_ok=True)
        self._lock = ProjectLock(self.sidecar / "lock", self.root)
        self._lock.acquire()
        self._conn = connect(self.sidecar / "project.db", read_only=False)
        for kind in (LABELS, PROPOSALS):
            remove_temp_files(self.sidecar / kind)
        self.refresh()

    def close(self) -> None:
        """Close the database and release the write lock (safe to call twice)."""
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"Project({str(self.root)!r}, {mode})"

    # ----------------------------------------------------------------------------- plumbing

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        self._require_writable()
        with self._mutex:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _connection(self) -> Any:
        if self._conn is None:
            raise ProjectError(f"The project {self.root} is closed; open it again.")
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._mutex:
            return self._connection().execute(sql, params).fetchall()

    def _records(self, sql: str, params: tuple[Any, ...] = ()) -> list[ImageRecord]:
        """Image records from a ``SELECT {_IMAGE_COLUMNS} ...`` (plain tuples: lists are long)."""
        with self._mutex:
            cursor = self._connection().cursor()
            cursor.row_factory = None
            rows = cursor.execute(sql, params).fetchall()
        read_size = self._record_size
        return [
            ImageRecord(
                relpath, None if width is None else (width, height), content_hash, status, error,
                confidence, updated_at, bool(labels), bool(proposal), read_size,
            )
            for relpath, width, height, content_hash, status, error, confidence, updated_at,
            labels, proposal in rows
        ]  # fmt: skip

    def _require_writable(self) -> None:
        if self.read_only:
            raise ProjectError(
                f"The project {self.root} is open read-only; nothing can be changed. "
                "Close the other window or process that has it open, then reopen it."
            )

    def _map_path(self, kind: str, relpath: str) -> Path:
        return self.sidecar / kind / f"{relpath}.png"

    # ----------------------------------------------------------------------------- reconciliation

    def refresh(self) -> None:
        """Re-scan the folder: add new images, follow renamed ones by content hash, mark vanished.

        One directory walk with a ``stat`` per file. Files whose size and modification time are
        unchanged are not read; new files are not hashed unless one may be a vanished image
        renamed (has the size of one), and their header size is read on demand, except for the
        first few in path order.
        """
        self._require_writable()
        skip = frozenset({self.sidecar})
        disk = _scan.walk_images(self.root, skip)
        stored = [
            _scan.StoredImage(r["relpath"], r["size"], r["mtime_ns"], r["content_hash"], bool(r["missing"]))
            for r in self._query("SELECT relpath, size, mtime_ns, content_hash, missing FROM images")
        ]  # fmt: skip
        plan = _scan.plan_reconcile(self.root, stored, disk)
        for old, fact in plan.renames:
            for kind in (LABELS, PROPOSALS):
                move_atomic(self._map_path(kind, old), self._map_path(kind, fact.relpath))
        self._apply_plan(plan)
        self._sync_map_flags()
        first = self._query(
            "SELECT relpath FROM (SELECT relpath, width FROM images WHERE missing = 0 "
            "ORDER BY relpath LIMIT ?) WHERE width IS NULL",
            (_HEADERS_AT_OPEN,),
        )
        self._read_sizes([r[0] for r in first])

    def _apply_plan(self, plan: _scan.ReconcilePlan) -> None:
        now = time.time()
        with self._transaction() as conn:
            conn.executemany(  # a header unreadable while it was away is read again
                "UPDATE images SET missing = 0, width = NULLIF(width, 0), "
                "height = NULLIF(height, 0) WHERE relpath = ?",
                [(p,) for p in plan.unchanged_back],
            )
            conn.executemany(
                "UPDATE images SET relpath = ?, size = ?, mtime_ns = ?, width = ?, height = ?, "
                "missing = 0, error = ? WHERE relpath = ?",
                [
                    (f.relpath, f.size, f.mtime_ns, f.width, f.height, f.error, old)
                    for old, f in plan.renames
                ],
            )
            conn.executemany(
                "UPDATE images SET size = ?, mtime_ns = ?, content_hash = ?, width = ?, height = ?, "
                "error = ?, missing = 0 WHERE relpath = ?",
                [
                    (f.size, f.mtime_ns, f.content_hash, f.width, f.height, f.error, f.relpath)
                    for f in plan.changed
                ],
            )
            conn.executemany(
                "INSERT INTO images (relpath, size, mtime_ns, content_hash, width, height, error, "
                "added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*fact, now, now) for fact in plan.added],  # FileFacts in column order
            )
            conn.executemany(
                "UPDATE images SET missing = 1 WHERE relpath = ?", [(p,) for p in plan.vanished]
            )  # fmt: skip

    def _sync_map_flags(self) -> None:
        """Make ``has_labels``/``has_proposal`` agree with the files (a crash may split them)."""
        for kind, column in ((LABELS, "has_labels"), (PROPOSALS, "has_proposal")):
            on_disk = set(_list_maps(self.sidecar / kind))
            flagged = {r[0] for r in self._query(f"SELECT relpath FROM images WHERE {column} = 1")}
            gained, lost = on_disk - flagged, flagged - on_disk
            if gained:  # only maps of known images count
                known = {r[0] for r in self._query("SELECT relpath FROM images")}
                gained &= known
            if not gained and not lost:
                continue
            with self._transaction() as conn:
                conn.executemany(
                    f"UPDATE images SET {column} = 1 WHERE relpath = ?", [(p,) for p in gained]
                )
                conn.executemany(f"UPDATE images SET {column} = 0 WHERE relpath = ?", [(p,) for p in lost])  # fmt: skip

    # ----------------------------------------------------------------------------- images

    def list_images(
        self,
        status: str | Iterable[str] | None = None,
        *,
        has_labels: bool | None = None,
        include_missing: bool = False,
    ) -> list[ImageRecord]:
        """Images sorted by relative path, optionally only those with a status (or statuses)
        and/or with (``has_labels=True``) or without human labels. Vanished files are left out
        unless ``include_missing``."""
        where, params = self._image_filter(status, has_labels, include_missing)
        return self._records(f"SELECT {_IMAGE_COLUMNS} FROM images{where} ORDER BY relpath", params)

    @staticmethod
    def _image_filter(
        status: str | Iterable[str] | None, has_labels: bool | None, include_missing: bool
    ) -> tuple[str, tuple[Any, ...]]:
        clauses: list[str] = [] if include_missing else ["missing = 0"]
        params: list[Any] = []
        wanted = _statuses(status)
        if wanted is not None:
            clauses.append(f"status IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if has_labels is not None:
            clauses.append("has_labels = ?")
            params.append(int(has_labels))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)

    def get_image(self, relpath: str) -> ImageRecord:
        """The record of one image, its size and header ``error`` known (the header is read now
        if it was not yet); :class:`ProjectError` if the project has no such image."""
        sql = f"SELECT {_IMAGE_COLUMNS} FROM images WHERE relpath = ?"
        records = self._records(sql, (relpath,))
        if not records:
            raise ProjectError(f"{relpath} is not an image of the project {self.root}.")
        if records[0].known_size is None and not self.read_only:
            self.image_size(relpath)
            records = self._records(sql, (relpath,))
        return records[0]

    def image_size(self, relpath: str) -> tuple[int, int]:
        """``(width, height)`` of an image in display orientation. Read from the file's header
        (no pixels) the first time and stored; ``(0, 0)`` when the header is unreadable, and then
        the record's ``error`` says why. :class:`ProjectError` if there is no such image."""
        rows = self._query("SELECT width, height FROM images WHERE relpath = ?", (relpath,))
        if not rows:
            raise ProjectError(f"{relpath} is not an image of the project {self.root}.")
        if rows[0][0] is not None:
            return rows[0][0], rows[0][1]
        width, height, error = _scan.read_header(self.image_path(relpath))
        if not self.read_only:
            self._store_sizes([(width, height, error, relpath)])
        return width, height

    def _record_size(self, relpath: str) -> tuple[int, int]:
        """:attr:`ImageRecord.size` of a record the project handed out, even after ``close``."""
        try:
            return self.image_size(relpath)
        except ProjectError:  # closed, or the image went away since the record was made
            return _scan.read_header(self.image_path(relpath))[:2]

    def _store_sizes(self, sizes: list[tuple[int, int, str | None, str]]) -> None:
        """Store ``(width, height, error, relpath)`` read from headers, for images present on
        disk (a vanished file's "does not exist" must not stick when it comes back)."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE images SET width = ?, height = ?, error = ? "
                "WHERE relpath = ? AND width IS NULL AND missing = 0",
                sizes,
            )

    def read_image_sizes(self, should_stop: ShouldStop = never_stop) -> Job[int]:
        """Batch job: read the header size of every image whose size is not known yet (no
        pixels), so that unreadable files show their ``error`` in :meth:`list_images`. Yields a
        :class:`Progress` per batch, returns how many images were read. Optional: sizes are
        otherwise read on demand. Raises :class:`JobCancelled` when ``should_stop()``."""
        self._require_writable()
        sql = "SELECT relpath FROM images WHERE width IS NULL AND missing = 0"
        todo = [r[0] for r in self._query(sql)]
        for start in range(0, len(todo), _SIZE_BATCH):
            if should_stop():
                raise JobCancelled("Reading image sizes stopped; the rest is read on demand.")
            batch = todo[start : start + _SIZE_BATCH]
            self._read_sizes(batch)
            yield Progress(start + len(batch), len(todo), "reading image sizes")
        return len(todo)

    def _read_sizes(self, relpaths: list[str]) -> None:
        if relpaths:
            self._store_sizes(
                [(*_scan.read_header(self.image_path(relpath)), relpath) for relpath in relpaths]
            )

    def image_path(self, relpath: str) -> Path:
        """Absolute path of an image file."""
        return self.root / relpath

    def load_image(self, relpath: str) -> np.ndarray:
        """The image as ``HxWx3 uint8`` RGB in display orientation (EXIF applied).

        On :class:`ImageReadError` the record's ``error`` is set (shown by the GUI) and the
        error is raised again.
        """
        self.get_image(relpath)
        try:
            image = load_image(self.image_path(relpath))
        except ImageReadError as error:
            self._set_image_error(relpath, str(error))
            raise
        self._set_image_error(relpath, None)
        return image

    def _set_image_error(self, relpath: str, message: str | None) -> None:
        if self.read_only or self.get_image(relpath).error == message:
            return
        with self._transaction() as conn:
            conn.execute("UPDATE images SET error = ? WHERE relpath = ?", (message, relpath))

    def set_status(self, relpath: str, status: str) -> None:
        """Set an image's review status (one of :data:`STATUSES`)."""
        _statuses(status)
        digest = self._missing_hash(self.get_image(relpath))
        with self._transaction() as conn:
            conn.execute(
                "UPDATE images SET status = ?, updated_at = ? WHERE relpath = ?",
                (status, time.time(), relpath),
            )
            _store_hash(conn, relpath, digest)

    def _missing_hash(self, record: ImageRecord) -> str | None:
        """The content hash to store for an image that is about to get labels, a proposal or a
        status, if it has none yet: what lets that work follow the file when it is renamed."""
        if record.content_hash:
            return None
        try:
            return _scan.hash_file(self.image_path(record.relpath))
        except OSError as error:
            log.warning(
                "%s cannot be hashed (%s); a rename will not be recognised", record.relpath, error
            )
            return None

    def next_unchecked(self, after: str | None = None) -> ImageRecord | None:
        """The first image not yet ``reviewed`` after ``after`` in path order, wrapping around;
        ``None`` when every image is reviewed ("jump to next unchecked")."""
        base = f"SELECT {_IMAGE_COLUMNS} FROM images WHERE missing = 0 AND status != 'reviewed'"
        if after is not None:
            records = self._records(base + " AND relpath > ? ORDER BY relpath LIMIT 1", (after,))
            if records:
                return records[0]
        records = self._records(base + " ORDER BY relpath LIMIT 1")
        return records[0] if records else None

    def review_queue(self) -> list[ImageRecord]:
        """Images whose proposal nobody has checked yet (status ``proposed``), least confident
        first (by ``mean_confidence``; unknown confidence last), then by path."""
        return self._records(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE missing = 0 AND status = 'proposed' "
            "AND has_proposal = 1 ORDER BY mean_confidence IS NULL, mean_confidence, relpath"
        )

    # ----------------------------------------------------------------------------- classes

    def list_classes(self) -> list[ClassInfo]:
        """Classes in display order."""
        rows = self._query("SELECT * FROM classes ORDER BY sort_order, id")
        return [_class_info(row) for row in rows]

    def get_class(self, class_id: int) -> ClassInfo:
        rows = self._query("SELECT * FROM classes WHERE id = ?", (int(class_id),))
        if not rows:
            raise ProjectError(f"There is no class with id {class_id} in {self.root}.")
        return _class_info(rows[0])

    def find_class(self, name: str) -> ClassInfo | None:
        """The class called ``name`` (case-insensitive, surrounding spaces ignored), if any."""
        key = name.strip().casefold()
        return next((c for c in self.list_classes() if c.name.casefold() == key), None)

    def _check_name(self, name: str, keep_id: int | None = None) -> str:
        clean = name.strip()
        if not clean or ";" in clean:
            raise ProjectError(
                f"{name!r} cannot be a class name: it must be non-empty, without ';'."
            )
        existing = self.find_class(clean)
        if existing is not None and existing.id != keep_id:
            raise ProjectError(
                f"A class called {existing.name!r} already exists; choose another name."
            )
        return clean

    def add_class(
        self,
        name: str,
        synonyms: Iterable[str] = (),
        color: tuple[int, int, int] | None = None,
        novel: bool = False,
    ) -> ClassInfo:
        """Add a class at the end of the list; its id is the next never-used id."""
        clean = self._check_name(name)
        with self._transaction() as conn:
            class_id = int(
                conn.execute("SELECT value FROM meta WHERE key='next_class_id'").fetchone()[0]
            )
            if class_id > _MAX_CLASS_ID:
                raise ProjectError(f"The project has used all {_MAX_CLASS_ID + 1} class ids.")
            order = conn.execute("SELECT COALESCE(MAX(sort_order) + 1, 0) FROM classes").fetchone()[
                0
            ]
            rgb = tuple(int(v) for v in (color or default_class_color(class_id)))
            conn.execute(
                "INSERT INTO classes VALUES (?, ?, ?, ?, ?, ?)",
                (
                    class_id,
                    clean,
                    json.dumps(_clean_synonyms(synonyms)),
                    json.dumps(rgb),
                    int(novel),
                    order,
                ),
            )
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'next_class_id'", (str(class_id + 1),)
            )
        self._luts.clear()
        return self.get_class(class_id)  # fmt: skip

    def _update_class(self, class_id: int, column: str, value: Any) -> None:
        self.get_class(class_id)
        with self._transaction() as conn:
            conn.execute(f"UPDATE classes SET {column} = ? WHERE id = ?", (value, int(class_id)))

    def rename_class(self, class_id: int, name: str) -> None:
        """Rename a class; label maps hold ids, so nothing else changes."""
        self._update_class(class_id, "name", self._check_name(name, keep_id=class_id))

    def set_synonyms(self, class_id: int, synonyms: Iterable[str]) -> None:
        self._update_class(class_id, "synonyms", json.dumps(_clean_synonyms(synonyms)))

    def set_class_color(self, class_id: int, color: tuple[int, int, int]) -> None:
        self._update_class(class_id, "color", json.dumps([int(v) for v in color]))

    def set_novel(self, class_id: int, novel: bool) -> None:
        """Mark a class unseen (``True``) or seen by the trained model, for seen/unseen metrics."""
        self._update_class(class_id, "novel", int(novel))

    def reorder_classes(self, class_ids: list[int]) -> None:
        """Set the display order; ``class_ids`` must name every class once."""
        current = sorted(c.id for c in self.list_classes())
        if sorted(class_ids) != current:
            raise ProjectError(f"reorder_classes needs every class id once: {current}.")
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE classes SET sort_order = ? WHERE id = ?",
                [(order, int(cid)) for order, cid in enumerate(class_ids)],
            )

    def merge_classes(self, source_id: int, target_id: int) -> None:
        """Relabel every ``source_id`` pixel (labels and proposals) as ``target_id``; the source
        class goes away."""
        if int(source_id) == int(target_id):
            raise ProjectError(
                "A class cannot be merged into itself; choose two different classes."
            )
        self.get_class(target_id)
        self._retire_class(source_id, int(target_id))

    def delete_class(self, class_id: int) -> None:
        """Delete a class; its pixels become unlabeled in labels and proposals."""
        self._retire_class(class_id, None)

    def _retire_class(self, class_id: int, replacement: int | None) -> None:
        class_id = int(self.get_class(class_id).id)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE class_alias SET new_id = ? WHERE new_id = ?", (replacement, class_id)
            )
            conn.execute(
                "INSERT OR REPLACE INTO class_alias VALUES (?, ?)", (class_id, replacement)
            )
            conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))
        self._luts.clear()
        self._rewrite_maps_with(class_id)  # fmt: skip

    def _rewrite_maps_with(self, class_id: int) -> None:
        """Rewrite the stored maps that still hold ``class_id`` (each file atomically)."""
        rows = self._query("SELECT relpath, has_labels, has_proposal FROM images")
        for row in rows:
            for kind, flag in ((LABELS, row["has_labels"]), (PROPOSALS, row["has_proposal"])):
                if flag:
                    self._rewrite_one(kind, row["relpath"], class_id)

    def _rewrite_one(self, kind: str, relpath: str, class_id: int) -> None:
        path = self._map_path(kind, relpath)
        try:
            stored = read_label_file(path)
        except LabelFileError as error:
            self._quarantine(kind, relpath, error)
            return
        if class_id <= np.iinfo(stored.dtype).max and (stored == class_id).any():
            write_label_file(path, self._to_storage(self._apply_lut(stored)))

    # ----------------------------------------------------------------------------- label maps

    @property
    def label_dtype(self) -> np.dtype:
        """``uint8`` while every class id ever used is <= 254, else ``uint16``."""
        next_id = int(self._query("SELECT value FROM meta WHERE key='next_class_id'")[0][0])
        return np.dtype(np.uint8) if next_id <= UNLABELED_U8 else np.dtype(np.uint16)

    @property
    def unlabeled_value(self) -> int:
        """The "not labelled" pixel value of :attr:`label_dtype` (255 or 65535)."""
        return UNLABELED_U8 if self.label_dtype == np.uint8 else UNLABELED_U16

    def _lut(self, source: np.dtype) -> np.ndarray:
        """Lookup table from stored pixel values (of dtype ``source``) to current class ids."""
        key = np.dtype(source)
        with self._mutex:
            if key not in self._luts:
                self._luts[key] = self._build_lut(key)
            return self._luts[key]

    def _build_lut(self, source: np.dtype) -> np.ndarray:
        target = self.label_dtype
        lut = np.full(int(np.iinfo(source).max) + 1, self.unlabeled_value, dtype=target)
        for (class_id,) in self._query("SELECT id FROM classes"):
            if class_id < lut.size:
                lut[class_id] = class_id
        for old, new in self._query("SELECT old_id, new_id FROM class_alias"):
            if old < lut.size:
                lut[old] = self.unlabeled_value if new is None else new
        return lut

    def _apply_lut(self, stored: np.ndarray) -> np.ndarray:
        return self._lut(stored.dtype)[stored]

    def _to_storage(self, label_map: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(label_map.astype(self.label_dtype, copy=False))

    def _load_map(self, kind: str, relpath: str) -> np.ndarray | None:
        record = self.get_image(relpath)
        if not (record.has_labels if kind == LABELS else record.has_proposal):
            return None
        try:
            stored = read_label_file(self._map_path(kind, relpath))
            _check_shape(stored, record, relpath)
        except LabelFileError as error:
            self._quarantine(kind, relpath, error)
            return None
        return self._apply_lut(stored)

    def load_labels(self, relpath: str) -> np.ndarray | None:
        """Human labels as ``[H, W]`` :attr:`label_dtype` class ids (``unlabeled_value`` = not
        labelled), or ``None`` if the image has none. A damaged file is quarantined, reported in
        :meth:`list_problems`, and ``None`` is returned."""
        return self._load_map(LABELS, relpath)

    def load_proposal(self, relpath: str) -> np.ndarray | None:
        """The stored model proposal (same convention as :meth:`load_labels`), or ``None``."""
        return self._load_map(PROPOSALS, relpath)

    def _validated(self, relpath: str, label_map: np.ndarray) -> tuple[np.ndarray, str | None]:
        """The map in storage form, and the content hash to store with it (see
        :meth:`_missing_hash`)."""
        record = self.get_image(relpath)
        label_map = np.asarray(label_map)
        if label_map.dtype.kind not in "iu":
            raise ProjectError(f"Label maps hold integer class ids, not {label_map.dtype}.")
        _check_shape(label_map, record, relpath)
        return self._normalize_ids(label_map), self._missing_hash(record)

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

    def save_labels(self, relpath: str, label_map: np.ndarray, status: str = "edited") -> None:
        """Store human labels for an image: ``[H, W]`` integer class ids, the image's display
        size; 255 (uint8 maps) or 65535 (other dtypes) or -1 mark unlabeled pixels. ``status``
        is ``edited`` or ``reviewed``. The file write is atomic."""
        if status not in ("edited", "reviewed"):
            raise ProjectError(f"Saved labels have status 'edited' or 'reviewed', not {status!r}.")
        self._require_writable()
        stored, digest = self._validated(relpath, label_map)
        write_label_file(self._map_path(LABELS, relpath), stored)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE images SET has_labels = 1, status = ?, updated_at = ? WHERE relpath = ?",
                (status, time.time(), relpath),
            )
            _store_hash(conn, relpath, digest)

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
        stored, digest = self._validated(relpath, label_map)
        write_label_file(self._map_path(PROPOSALS, relpath), stored)
        confidence = None if mean_confidence is None else float(mean_confidence)
        with self._transaction() as conn:
            conn.execute(
                "UPDATE images SET has_proposal = 1, mean_confidence = ?, updated_at = ?, "
                "status = CASE status WHEN 'new' THEN 'proposed' ELSE status END WHERE relpath = ?",
                (confidence, time.time(), relpath),
            )  # fmt: skip
            _store_hash(conn, relpath, digest)

    def accept_proposal(self, relpath: str, status: str = "reviewed") -> np.ndarray:
        """Copy the proposal into the human labels (a person accepted it) and return it."""
        proposal = self.load_proposal(relpath)
        if proposal is None:
            raise ProjectError(f"{relpath} has no proposal to accept; run the model on it first.")
        self.save_labels(relpath, proposal, status=status)
        return proposal

    # ----------------------------------------------------------------------------- problems

    def _quarantine(self, kind: str, relpath: str, error: Exception) -> None:
        message = f"The stored {kind[:-1]} map of {relpath} is damaged: {error}"
        if self.read_only:
            self._session_problems.append(Problem(time.time(), relpath, message))
            log.warning(message)
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.sidecar / "quarantine" / stamp / kind / f"{relpath}.png"
        move_atomic(self._map_path(kind, relpath), target)
        message += f" It was moved to {target}; label the image again or restore that file."
        column = "has_labels" if kind == LABELS else "has_proposal"
        with self._transaction() as conn:
            conn.execute(f"UPDATE images SET {column} = 0 WHERE relpath = ?", (relpath,))
            conn.execute(
                "INSERT INTO problems (at, relpath, message) VALUES (?, ?, ?)",
                (time.time(), relpath, message),
            )
        log.warning(message)

    def list_problems(self) -> list[Problem]:
        """What the store repaired or set aside (quarantined files), oldest first."""
        rows = self._query("SELECT at, relpath, message FROM problems ORDER BY id")
        return [Problem(r["at"], r["relpath"], r["message"]) for r in rows] + self._session_problems

    # ----------------------------------------------------------------------------- settings

    def get_setting(self, key: str, default: Any = None) -> Any:
        """A JSON value stored with the project (training versions, engine choice, ...)."""
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key`` (atomic)."""
        text = json.dumps(value)
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, text))


def _store_hash(conn: Any, relpath: str, digest: str | None) -> None:
    if digest:
        conn.execute(
            "UPDATE images SET content_hash = ? WHERE relpath = ? AND content_hash = ''",
            (digest, relpath),
        )


def _clean_synonyms(synonyms: Iterable[str]) -> list[str]:
    if isinstance(synonyms, str):
        synonyms = synonyms.split(";")
    return [s.strip() for s in synonyms if s.strip()]


def _check_shape(label_map: np.ndarray, record: ImageRecord, relpath: str) -> None:
    expected = (record.height, record.width)
    if label_map.ndim != 2 or (record.width > 0 and label_map.shape != expected):
        raise LabelFileError(
            f"The label map for {relpath} is {label_map.shape[::-1]} (width, height) but the "
            f"image is {record.width} x {record.height}; label maps must match the image."
        )


def _list_maps(folder: Path) -> Iterator[str]:
    """Relative image paths that have a stored map under ``folder``."""
    if not folder.exists():
        return
    for path in folder.rglob("*.png"):
        if not path.name.startswith("."):
            yield path.relative_to(folder).as_posix()[: -len(".png")]
