"""The SQLite database inside the sidecar: schema, connection settings, small helpers.

WAL mode with ``synchronous=FULL``: a committed transaction survives a crash or power loss, and
readers (a read-only second process) never block the writer.

Schema 2 lets ``width``/``height`` be NULL (not read yet: opening a folder reads no file) and
``content_hash`` be ``''`` (not computed yet); a schema-1 database is migrated on open. Schema 3
adds ``pending_moves`` (label files being moved to follow renamed pictures, see ``_reconcile``).
A database of a newer schema is refused, never opened.

The WAL is checkpointed on close and every so often (see ``Project``), so that ``project.db``
alone holds the project; a lost WAL after a crash loses at most the last few seconds of class
and status changes, and the label files (which describe themselves) give back the rest.
SQLite failures become typed errors whose message says what happened and what to do.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from annotator.errors import (
    DiskFullError,
    ProjectDamagedError,
    ProjectError,
    ProjectReadOnlyError,
    ProjectVersionError,
)

SCHEMA_VERSION = 3

_IMAGES_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    id INTEGER PRIMARY KEY,
    relpath TEXT NOT NULL UNIQUE,
    width INTEGER,
    height INTEGER,
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'new',
    error TEXT,
    mean_confidence REAL,
    has_labels INTEGER NOT NULL DEFAULT 0,
    has_proposal INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    + _IMAGES_TABLE.format(name="images")
    + """
CREATE INDEX IF NOT EXISTS images_hash ON images (content_hash);
CREATE TABLE IF NOT EXISTS classes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    synonyms TEXT NOT NULL DEFAULT '[]',
    color TEXT NOT NULL,
    novel INTEGER NOT NULL DEFAULT 0,
    sort_order INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS class_alias (old_id INTEGER PRIMARY KEY, new_id INTEGER);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS problems (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, relpath TEXT NOT NULL, message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_moves (
    seq INTEGER PRIMARY KEY, source TEXT NOT NULL, stage TEXT NOT NULL, target TEXT NOT NULL
);
"""
)


def _damaged(path: Path, error: Exception) -> ProjectDamagedError:
    return ProjectDamagedError(
        f"The project database {path} is damaged (SQLite: {error}). Your label maps in "
        f"{path.parent / 'labels'} are untouched. To rebuild the project from them, close "
        f"annotator, rename {path.name} to {path.name}.damaged (keep it for a data recovery "
        "tool) and open the folder again: classes, labels and statuses are read back from the "
        "label files."
    )


def translate(path: Path, error: sqlite3.Error) -> ProjectError:
    """The typed error for an SQLite failure on the database at ``path``."""
    text = str(error).lower()
    if "malformed" in text or "not a database" in text or "encrypted" in text:
        return _damaged(path, error)
    if "full" in text:
        return DiskFullError(
            f"The disk holding {path.parent} is full (SQLite: {error}); the last change was "
            "not saved, everything saved before is kept. Free some space, then do it again."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return ProjectReadOnlyError(
            f"The project data {path.parent} cannot be written (SQLite: {error}); nothing was "
            "changed. Make the folder writable, or open the project read-only to look at it."
        )
    return ProjectError(
        f"The project database {path} failed (SQLite: {error}); the last change was not saved. "
        "Check the disk, then try again."
    )


@contextlib.contextmanager
def translating(path: Path) -> Iterator[None]:
    """Turn SQLite errors raised inside into :func:`translate`'s typed errors."""
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise  # a bug in the store, not something the user caused
    except sqlite3.Error as error:
        raise translate(path, error) from error


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database written by a newer annotator (before anything writes to it)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return  # a new, empty database
        raise
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise ProjectVersionError(
            f"The project {path.parent.parent} was saved by a newer version of annotator "
            f"(project schema {row[0]}; this version reads up to {SCHEMA_VERSION}). Nothing was "
            "changed. Update annotator to open it."
        )


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    if result != "ok":
        raise _damaged(path, sqlite3.DatabaseError(result))


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """``mode=ro``; where the folder cannot be written (WAL needs ``-shm``), ``immutable=1``
    reads the database file alone (checkpointed on every close)."""
    base = path.resolve().as_uri()
    for query in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(
            f"{base}?{query}", uri=True, check_same_thread=False, isolation_level=None
        )
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as error:
            conn.close()
            if "malformed" in str(error) or "not a database" in str(error):
                raise
            last = error
    raise last


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """Open (and for writers, create or migrate) the project database at ``path``.

    Raises :class:`ProjectDamagedError`, :class:`ProjectVersionError`,
    :class:`ProjectReadOnlyError` or :class:`DiskFullError` with what to do.
    """
    with translating(path):
        conn = _connect_read_only(path) if read_only else _connect_writer(path)
        try:
            _check_version(conn, path)
            _check_integrity(conn, path)
            if not read_only:
                _create(conn)
            conn.execute("PRAGMA busy_timeout=5000")
        except BaseException:
            conn.close()
            raise
    conn.row_factory = sqlite3.Row
    return conn


def _connect_writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    return conn


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('next_class_id', '0')")
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('moves_phase', '0')")
    _migrate(conn)


def checkpoint(conn: sqlite3.Connection, mode: str = "PASSIVE") -> None:
    """Copy the WAL into the database file (``TRUNCATE`` also empties the WAL)."""
    conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()


def _migrate(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: rebuild ``images`` with nullable ``width``/``height`` (SQLite cannot drop a
    NOT NULL constraint in place); 2 -> 3: ``pending_moves`` (created by the schema script).
    One transaction: a crash leaves the old schema, migrated next time."""
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    if int(version) >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if int(version) < 2:
            conn.execute(_IMAGES_TABLE.format(name="images_v2"))
            conn.execute("INSERT INTO images_v2 SELECT * FROM images")
            conn.execute("DROP TABLE images")
            conn.execute("ALTER TABLE images_v2 RENAME TO images")
            conn.execute("CREATE INDEX IF NOT EXISTS images_hash ON images (content_hash)")
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
