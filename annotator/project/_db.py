"""The SQLite database inside the sidecar: schema, connection settings, small helpers.

WAL mode with ``synchronous=FULL``: a committed transaction survives a crash or power loss, and
readers (a read-only second process) never block the writer.

Schema 2 lets ``width``/``height`` be NULL (not read yet: opening a folder reads no file) and
``content_hash`` be ``''`` (not computed yet); a schema-1 database is migrated on open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2

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
"""
)


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """Open (and for writers, create or migrate) the project database at ``path``."""
    if read_only:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('next_class_id', '0')")
        _migrate(conn)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.row_factory = sqlite3.Row
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: rebuild ``images`` with nullable ``width``/``height`` (SQLite cannot drop a
    NOT NULL constraint in place). One transaction: a crash leaves schema 1, migrated next time."""
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    if int(version) >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
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
