"""Reconcile the image table with the folder on open, by (size, mtime) and content hash.

Unchanged files (same size and mtime as stored) are not read at all, so re-opening a large
project costs one directory walk. New or changed files are hashed and their headers read (never
their pixels). A stored image whose path is gone is matched to a new file with the same content
hash (a rename or move): its labels follow it. Unmatched vanished images are kept as *missing*
with their labels, and come back if the file reappears.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from annotator.errors import ImageReadError
from annotator.imageio import IMAGE_SUFFIXES, read_image_size

_CHUNK = 1 << 20


@dataclass(frozen=True)
class DiskFile:
    """An image file found by the walk: POSIX path relative to the root, size, mtime in ns."""

    relpath: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileFacts:
    """What reading a new or changed file told us (no pixels decoded)."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int
    error: str | None


def walk_images(root: Path, skip: frozenset[Path]) -> dict[str, DiskFile]:
    """Every image file under ``root`` (recursive), skipping hidden entries and ``skip`` folders.

    Plain strings rather than ``Path`` objects: this runs over every file on every open.
    """
    skipped = {os.fspath(path) for path in skip}
    found: dict[str, DiskFile] = {}
    stack = [(os.fspath(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.path not in skipped:
                    stack.append((entry.path, f"{prefix}{name}/"))
            elif os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                _add_file(found, f"{prefix}{name}", entry)
    return found


def _add_file(found: dict[str, DiskFile], relpath: str, entry: os.DirEntry[str]) -> None:
    try:
        stat = entry.stat()
    except OSError:
        return
    found[relpath] = DiskFile(relpath, stat.st_size, stat.st_mtime_ns)


def hash_file(path: Path) -> str:
    """Hex BLAKE2b-128 content hash: the whole file up to 3 MiB, else its size plus 1 MiB from
    the start, the middle and the end (so a first scan of huge TIFFs does not read them whole;
    enough to recognise a renamed file)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= 3 * _CHUNK:
            digest.update(handle.read())
        else:
            digest.update(size.to_bytes(8, "little"))
            for offset in (0, size // 2 - _CHUNK // 2, size - _CHUNK):
                handle.seek(offset)
                digest.update(handle.read(_CHUNK))
    return digest.hexdigest()


def read_facts(root: Path, file: DiskFile) -> FileFacts:
    """Hash and header of one file; unreadable files get ``error`` instead of raising."""
    path = root / file.relpath
    try:
        content_hash = hash_file(path)
    except OSError as error:
        return FileFacts(file.relpath, file.size, file.mtime_ns, "", 0, 0, str(error))
    try:
        width, height = read_image_size(path)
        error = None
    except ImageReadError as failure:
        width, height, error = 0, 0, str(failure)
    return FileFacts(file.relpath, file.size, file.mtime_ns, content_hash, width, height, error)


def read_all_facts(root: Path, files: list[DiskFile]) -> list[FileFacts]:
    """:func:`read_facts` for many files, a few threads at a time (hashing releases the GIL)."""
    if len(files) < 16:
        return [read_facts(root, file) for file in files]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(lambda file: read_facts(root, file), files, chunksize=64))


@dataclass
class StoredImage:
    """The part of an image row reconciliation needs."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: str
    missing: bool


@dataclass
class ReconcilePlan:
    """What to change in the database (and which label files to move) after a walk."""

    unchanged_back: list[str]  # stored missing, now present with the same size and mtime
    changed: list[FileFacts]  # same path, new size/mtime
    renames: list[tuple[str, FileFacts]]  # (old relpath, new file with the same hash)
    added: list[FileFacts]
    vanished: list[str]


def plan_reconcile(
    root: Path, stored: list[StoredImage], disk: dict[str, DiskFile]
) -> ReconcilePlan:
    """Compare the stored rows with the walk; hash only new or changed files."""
    by_path = {row.relpath: row for row in stored}
    back, to_read = [], []
    for relpath, file in disk.items():
        row = by_path.get(relpath)
        if row is None or (row.size, row.mtime_ns) != (file.size, file.mtime_ns):
            to_read.append(file)
        elif row.missing:
            back.append(relpath)
    facts = read_all_facts(root, to_read)
    changed = [fact for fact in facts if fact.relpath in by_path]
    fresh = [fact for fact in facts if fact.relpath not in by_path]
    gone = [row for row in stored if row.relpath not in disk]
    renames, added = _match_renames(gone, fresh)
    renamed = {old for old, _ in renames}
    vanished = [row.relpath for row in gone if not row.missing and row.relpath not in renamed]
    return ReconcilePlan(back, changed, renames, added, vanished)


def _match_renames(
    gone: list[StoredImage], fresh: list[FileFacts]
) -> tuple[list[tuple[str, FileFacts]], list[FileFacts]]:
    waiting: dict[str, list[StoredImage]] = {}
    for row in sorted(gone, key=lambda row: (row.missing, row.relpath)):
        if row.content_hash:
            waiting.setdefault(row.content_hash, []).append(row)
    renames, added = [], []
    for fact in sorted(fresh, key=lambda fact: fact.relpath):
        candidates = waiting.get(fact.content_hash) if fact.content_hash else None
        if candidates:
            renames.append((candidates.pop(0).relpath, fact))
        else:
            added.append(fact)
    return renames, added
