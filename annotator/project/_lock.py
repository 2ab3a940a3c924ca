"""One writer per project: an OS file lock on ``<sidecar>/lock`` holding the owner's pid and host.

The kernel releases ``flock`` locks when a process dies, so a lock left by a killed process is
never mistaken for a live one. Where ``fcntl`` is missing (Windows), the lock file is created
exclusively and a lock whose pid is no longer alive on this host is treated as stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from annotator.errors import ProjectLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project open for writing."""

    pid: int
    host: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"process {self.pid} on {self.host} (since {when})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def read_holder(path: Path) -> LockHolder | None:
    """The holder recorded in a lock file, or ``None`` if the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _locked_error(root: Path, holder: LockHolder | None) -> ProjectLockedError:
    who = holder.describe() if holder else "another process"
    return ProjectLockedError(
        f"The project {root} is already open for editing by {who}. Close it there first, "
        "or open it read-only to look without changing anything."
    )


class ProjectLock:
    """Holds the write lock of one project until :meth:`release`."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self._root = root
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`ProjectLockedError` naming the holder."""
        if fcntl is None:  # pragma: no cover - Windows
            self._acquire_exclusive_create()
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _locked_error(self._root, read_holder(self.path)) from None
        self._fd = fd
        self._write_holder(fd)

    def _write_holder(self, fd: int) -> None:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
        os.fsync(fd)

    def _acquire_exclusive_create(self) -> None:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_holder(self.path)
                stale = holder is not None and holder.host == socket.gethostname()
                if stale and not _pid_alive(holder.pid):
                    self.path.unlink(missing_ok=True)
                    continue
                raise _locked_error(self._root, holder) from None
            self._fd = fd
            self._write_holder(fd)
            return
        raise _locked_error(self._root, read_holder(self.path))

    def release(self) -> None:
        if self._fd is None:
            return
        # The file stays (unlinking it while others may have it open would let two processes
        # lock two different inodes); emptying it says nobody holds it.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        if fcntl is None:  # pragma: no cover - Windows: the file itself is the lock
            with contextlib.suppress(OSError):
                self.path.unlink()
