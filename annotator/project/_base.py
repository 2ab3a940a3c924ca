"""The plumbing every part of :class:`~annotator.project.Project` shares: the connection, the
mutex, transactions (with periodic WAL checkpoints), typed SQLite errors and safe paths."""

from __future__ import annotations

import abc
import errno
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from annotator.errors import DiskFullError, ProjectClosedError, ProjectError
from annotator.project import _db, _scan
from annotator.project._paths import check_relpath, inside
from annotator.project.records import ImageRecord, Problem

log = logging.getLogger(__name__)

LABELS, PROPOSALS = "labels", "proposals"
_IMAGE_COLUMNS = (
    "relpath, width, height, content_hash, status, error, mean_confidence, updated_at, "
    "has_labels, has_proposal"
)
#: Checkpoint the WAL into ``project.db`` after this many seconds or commits, whichever first,
#: so the database file alone is never far behind (a lost WAL loses little).
CHECKPOINT_EVERY_S = 10.0
CHECKPOINT_EVERY_COMMITS = 200


class ProjectBase(abc.ABC):
    """State and plumbing shared by the parts of :class:`Project` (not used on its own)."""

    def __init__(self, root: Path, sidecar: Path, read_only: bool) -> None:
        self.root = root
        self.sidecar = sidecar
        self.read_only = read_only
        self._mutex = threading.RLock()
        self._conn: Any = None
        self._luts: dict[tuple[np.dtype, int], tuple[np.ndarray, np.ndarray]] = {}
        self._session_problems: list[Problem] = []
        self._last_checkpoint = time.monotonic()
        self._commits = 0

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: every later read or write raises ProjectClosedError."""
        return self._conn is None

    @property
    def _db_path(self) -> Path:
        return self.sidecar / "project.db"

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        self._require_writable()
        with self._mutex, _db.translating(self._db_path):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._after_commit(conn)

    def _after_commit(self, conn: Any) -> None:
        self._commits += 1
        now = time.monotonic()
        if (
            self._commits >= CHECKPOINT_EVERY_COMMITS
            or now - self._last_checkpoint >= CHECKPOINT_EVERY_S
        ):
            _db.checkpoint(conn)
            self._commits, self._last_checkpoint = 0, now

    def _connection(self) -> Any:
        if self._conn is None:
            raise ProjectClosedError(f"The project {self.root} is closed; open it again.")
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._mutex, _db.translating(self._db_path):
            return self._connection().execute(sql, params).fetchall()

    def _meta(self, key: str) -> str:
        return str(self._query("SELECT value FROM meta WHERE key = ?", (key,))[0][0])

    def _records(self, sql: str, params: tuple[Any, ...] = ()) -> list[ImageRecord]:
        """Image records from a ``SELECT {_IMAGE_COLUMNS} ...`` (plain tuples: lists are long)."""
        with self._mutex, _db.translating(self._db_path):
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

    @abc.abstractmethod
    def _record_size(self, relpath: str) -> tuple[int, int]:
        """``(width, height)`` of ``relpath``, read from the header on first use (``Project``)."""

    def image_path(self, relpath: str) -> Path:
        """Absolute path of an image file (``relpath`` must be a plain relative path)."""
        return self.root / check_relpath(relpath)

    def _hash_image(self, relpath: str) -> str:
        """The image's content hash now (``''`` if it cannot be read)."""
        try:
            return _scan.hash_file(self.image_path(relpath))
        except OSError as error:
            log.warning("%s cannot be hashed (%s); a rename will not be recognised", relpath, error)
            return ""

    def _missing_hash(self, record: ImageRecord) -> str | None:
        """The content hash to store for an image that is about to get labels, a proposal or a
        status, if it has none yet: what lets that work follow the file when it is renamed."""
        if record.content_hash:
            return None
        return self._hash_image(record.relpath) or None

    def _require_writable(self) -> None:
        self._connection()  # a closed project no longer holds the write lock: write nothing
        if self.read_only:
            raise ProjectError(
                f"The project {self.root} is open read-only; nothing can be changed. "
                "Close the other window or process that has it open, then reopen it."
            )

    def sidecar_path(self, *parts: str) -> Path:
        """``<sidecar>/<parts...>``, checked to stay inside the sidecar: each part is a plain
        relative path (no ``..``, not absolute) and no existing component is a symlink
        (:class:`~annotator.errors.UnsafePathError` otherwise). Other packages keep their files
        here (e.g. ``project.sidecar_path("models")``)."""
        return inside(self.sidecar, *parts)

    def _map_path(self, kind: str, relpath: str) -> Path:
        return inside(self.sidecar, kind, f"{check_relpath(relpath)}.png", file=True)

    def _write_failed(self, what: str, error: OSError) -> ProjectError:
        """The typed error for a file write that failed: nothing of it was saved."""
        if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return DiskFullError(
                f"The disk holding {self.sidecar} is full: {what} were not saved (what was "
                "saved before is kept, nothing is half written). Free some space, then save again."
            )
        return ProjectError(
            f"{what[0].upper()}{what[1:]} could not be written to {self.sidecar} "
            f"({error.strerror or error}); they were not saved (what was saved before is kept). "
            "Check that the folder is writable, then save again."
        )
