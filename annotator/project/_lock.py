"""One writer per project: an OS lock on the sidecar folder, plus ``<sidecar>/lock`` naming the
owner's pid and host.

The kernel releases ``flock`` locks when a process dies, so a lock left by a killed process is
never mistaken for a live one. The lock that counts is taken on the sidecar *folder* itself, which
cannot be swapped underneath a running writer the way a file can (deleting ``lock`` while a writer
holds it must not let a second writer in); ``lock`` is also locked, for older versions, and is
opened without following a symlink (a linked ``lock`` is refused, never written through). Where ``fcntl`` is missing (Windows), the lock file is created
exclusively and a lock whose pid is no longer alive on this host is treated as stale.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from annotator.errors import ProjectError, ProjectLockedError, ProjectReadOnlyError
from annotator.project._atomic import file_mode
from annotator.project._paths import open_nofollow

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
        with os.fdopen(open_nofollow(path, os.O_RDONLY), "rb") as handle:
            data = json.loads(handle.read(4096).decode("utf-8"))
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError, ProjectError):  # ProjectError: a link
        return None


def _read_only_error(root: Path, error: OSError) -> ProjectReadOnlyError:
    return ProjectReadOnlyError(
        f"The project data of {root} cannot be written ({error.strerror}); nothing was changed. "
        "Open it read-only to look at it or export from it, or make the folder writable."
    )


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
        self._dir_fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`ProjectLockedError` naming the holder
        (:class:`ProjectReadOnlyError` where the sidecar cannot be written,
        :class:`UnsafePathError` for a symlinked ``lock``)."""
        if fcntl is None:  # pragma: no cover - Windows
            self._acquire_exclusive_create()
            return
        self._dir_fd = self._flocked(os.open(self.path.parent, os.O_RDONLY))
        try:
            self._fd = self._flocked(self._open_file())
            os.set_inheritable(self._fd, False)
            self._write_holder(self._fd)
        except BaseException:
            self.release()
            raise

    def _flocked(self, fd: int) -> int:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _locked_error(self._root, read_holder(self.path)) from None
        return fd

    def _open_file(self) -> int:
        try:
            fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT, file_mode())
        except PermissionError as error:
            raise _read_only_error(self._root, error) from error
        except OSError as error:
            if error.errno == errno.EROFS:
                raise _read_only_error(self._root, error) from error
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ProjectLockedError(
                f"{self.path} is not a plain file; remove it, then open the project again."
            )
        return fd

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
        """Give the lock back (safe to call twice)."""
        if self._fd is not None:
            # The file stays (unlinking it while others may have it open would let two
            # processes lock two different inodes); emptying it says nobody holds it.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor drops its flock
            self._fd = None
            if fcntl is None:  # pragma: no cover - Windows: the file itself is the lock
                with contextlib.suppress(OSError):
                    self.path.unlink()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
