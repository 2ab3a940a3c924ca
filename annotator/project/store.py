"""The project store: an image folder plus a sidecar folder holding all annotation state.

Layout of the sidecar (``<folder>/.annotator`` unless given)::

    project.db             SQLite (WAL, checkpointed on close and every few seconds): images,
                           classes, class aliases, settings, problems, pending label-file moves
    lock                   pid + host of the process holding the project open for writing
    labels/<relpath>.png   human label maps (class ids; each file names its classes, its
                           "not labelled" value and the picture it was saved for)
    proposals/<relpath>.png  model proposals, never ground truth until accepted or edited
    quarantine/...         damaged or mismatched label files moved aside, with a problem recorded
    staging/               label files half way through a move (finished on the next open)

Every file write is atomic and every database change is a transaction, so a process killed at
any instant leaves the old or the new state. The parts live in their own modules: class
operations (``_classes``), label map I/O (``_maps``), reconciliation on open (``_reconcile``),
shared plumbing (``_base``); this module opens and closes, and answers about images and settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import ImageReadError, JobCancelled, ProjectError, ProjectReadOnlyError
from annotator.imageio import load_image
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.project import _db, _scan
from annotator.project._base import _IMAGE_COLUMNS
from annotator.project._lock import ProjectLock
from annotator.project._maps import store_hash
from annotator.project._paths import inside
from annotator.project._reconcile import Reconciler
from annotator.project.records import STATUSES, ImageRecord

log = logging.getLogger(__name__)

DEFAULT_SIDECAR = ".annotator"
_SIZE_BATCH = 256
#: Unknown header sizes read at open: the first rows in path order, i.e. what a list view shows
#: first and where a viewer starts, so an unreadable one is marked before anyone picks it (ms).
_HEADERS_AT_OPEN = 64


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    unknown = [value for value in wanted if value not in STATUSES]
    if unknown:
        raise ProjectError(f"Unknown status {unknown}; use one of {', '.join(STATUSES)}.")
    return wanted


class Project(Reconciler):
    """An open project. Create with :meth:`open`; use as a context manager or call :meth:`close`.

    Thread-safe: one instance may be shared by the GUI thread and worker threads. Class
    operations, label maps and reconciliation come from the bases (``_classes``, ``_maps``,
    ``_reconcile``); see ``docs/interfaces.md`` for the whole API.
    """

    def __init__(self, root: Path, sidecar: Path, read_only: bool) -> None:
        super().__init__(root, sidecar, read_only)
        self._lock: ProjectLock | None = None

    # ----------------------------------------------------------------------------- open / close

    @classmethod
    def open(
        cls, folder: str | Path, sidecar: str | Path | None = None, read_only: bool = False
    ) -> Project:
        """Open ``folder`` (any image folder, searched recursively) as a project.

        Writers create the sidecar if needed, take the write lock (:class:`ProjectLockedError`
        names the process holding it; open with ``read_only=True`` to look anyway), finish or
        clean up what a killed process left, reconcile the image table with the disk and
        recover what the database does not know from the label files. A damaged, newer or
        unwritable database raises a typed :class:`ProjectError` that says what to do.
        """
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise ProjectError(f"{root} is not a folder; choose the folder that holds the images.")
        side = Path(sidecar).expanduser().resolve() if sidecar else inside(root, DEFAULT_SIDECAR)
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
            self.sidecar_path("project.db")
            self._conn = _db.connect(self._db_path, read_only=True)
            return
        self._make_sidecar()
        self._lock = ProjectLock(self.sidecar / "lock", self.root)
        self._lock.acquire()
        self.sidecar_path("project.db")  # never a link to a database elsewhere
        self._conn = _db.connect(self._db_path, read_only=False)
        self.refresh()

    def _make_sidecar(self) -> None:
        try:
            self.sidecar.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ProjectReadOnlyError(
                f"The project data folder {self.sidecar} cannot be created ({error.strerror}); "
                "nothing was changed. Open the folder read-only once it has project data, choose "
                "another data folder (--sidecar), or free space / make the folder writable."
            ) from error

    def close(self) -> None:
        """Checkpoint the WAL into ``project.db`` (so that file alone holds the project), close
        the database and release the write lock (safe to call twice)."""
        with self._mutex:
            if self._conn is not None:
                if not self.read_only:
                    with contextlib.suppress(Exception):  # closing must not fail
                        _db.checkpoint(self._conn, "TRUNCATE")
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

    # ----------------------------------------------------------------------------- reconciliation

    def refresh(self) -> None:
        """Re-scan the folder: add new images, follow renamed (or renumbered, swapped) pictures
        by content hash, set aside the maps of pictures replaced by another one, mark vanished
        ones, and adopt label files the database does not know.

        One directory walk with a ``stat`` per file. Files whose size and modification time are
        unchanged are not read; new files are not hashed unless one may be a vanished image
        renamed (has the size of one), and their header size is read on demand, except for the
        first few in path order.
        """
        self._reconcile()
        first = self._query(
            "SELECT relpath FROM (SELECT relpath, width FROM images WHERE missing = 0 "
            "ORDER BY relpath LIMIT ?) WHERE width IS NULL",
            (_HEADERS_AT_OPEN,),
        )
        self._read_sizes([r[0] for r in first])

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
            store_hash(conn, relpath, digest)

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
