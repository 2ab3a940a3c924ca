"""Crash-safe file writes: temp file in the same folder, fsync, rename, fsync the folder.

A process killed at any instant leaves either the old file or the new one at ``path``, never a
partial file. Leftover temp files (``.NAME.*.tmp``) are swept by :func:`remove_temp_files`.
Files get the permissions of any file the user creates (``0666`` less the umask, e.g. ``0644``),
not the ``0600`` of a temp file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def _read_umask() -> int:
    """The process umask, without changing it where Linux can tell it (``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting, then put back at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permission bits of a new ordinary file under the current umask (``0o644`` for ``022``)."""
    return 0o666 & ~_read_umask()


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, creating parent folders as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with contextlib.suppress(OSError, AttributeError):  # no fchmod on Windows
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(path.parent)


def move_atomic(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` (same file system); a missing source is a no-op.

    Idempotent on purpose: reconciliation may repeat a move that a killed process already did.
    """
    if not os.path.lexists(source):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)


def remove_temp_files(folder: Path) -> int:
    """Delete temp files left by killed writers under ``folder`` (never following a symlinked
    folder, and nothing at all when ``folder`` itself is a link); return how many."""
    removed = 0
    if folder.is_symlink() or not folder.is_dir():
        return 0
    for parent, _dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(parent, name))
                    removed += 1
    return removed
