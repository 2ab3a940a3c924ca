"""Paths derived from the database or the sidecar stay inside the project, never through a link.

A relative path stored in ``project.db`` or named by a sidecar file is data someone may have
handed the user: ``../../x``, an absolute path or a symlinked folder inside the sidecar must not
make the store read, move, write or delete anything outside it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from annotator.errors import UnsafePathError

__all__ = ["UnsafePathError", "check_relpath", "inside", "open_nofollow"]

_WINDOWS = os.name == "nt"


def check_relpath(relpath: str) -> str:
    """``relpath`` if it is a plain relative POSIX path (no ``..``, no root, no NUL; on Windows
    also no ``\\`` or drive), else :class:`UnsafePathError`. String checks only: this runs for
    every row on every open."""
    bad = (
        not relpath
        or "\0" in relpath
        or relpath[0] == "/"
        or any(part in ("..", ".", "") for part in relpath.split("/"))
        or (_WINDOWS and ("\\" in relpath or ":" in relpath))
    )
    if bad:
        raise UnsafePathError(
            f"The project data names the path {relpath!r}, which is not inside the project; "
            "it was not used. The project database may have been edited by hand or come from "
            "someone else."
        )
    return relpath


def inside(base: Path, *parts: str, file: bool = False) -> Path:
    """``base / parts`` after checking that no existing component below ``base`` is a symlink
    (so the result stays under ``base``); :class:`UnsafePathError` otherwise. ``parts`` may hold
    ``/``-separated relative paths (each checked by :func:`check_relpath`). With ``file``, the
    last component may be a link: it names a file that is replaced by rename (which never
    follows a link) and read with :func:`open_nofollow`."""
    pieces = [piece for part in parts for piece in check_relpath(part).split("/")]
    path = base
    for index, piece in enumerate(pieces):
        path = path / piece
        if not (file and index == len(pieces) - 1):
            _refuse_link(path)
    return path


def _refuse_link(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise UnsafePathError(f"{path} cannot be checked ({error}).") from error
    if stat.S_ISLNK(mode):
        raise UnsafePathError(
            f"{path} is a symbolic link; the project keeps its own files inside its data folder "
            "and does not follow links out of it. Replace the link with a real folder or file "
            "(or remove it), then open the project again."
        )


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symlink at ``path`` itself (:class:`UnsafePathError`)."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, flags | nofollow, mode)
    except OSError as error:
        if nofollow and error.errno == errno.ELOOP:  # the last component is a symlink
            _refuse_link(path)
        raise
