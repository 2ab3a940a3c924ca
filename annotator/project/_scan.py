"""Reconcile the image table with the folder on open, by (size, mtime) and content hash.

Planning reads no new image file: the walk's ``stat`` gives size and mtime, and a new file is
stored with its header size unknown (read on demand, see ``Project.image_size``) and no hash.
Files are hashed only where a hash decides something: a new file whose size equals that of a vanished,
hashed image may be that image renamed or moved; if the hashes match, its labels follow it.
Unchanged files (same size and mtime) are never read; a changed file is hashed and its header
read again (never its pixels). Unmatched vanished images are kept as *missing* with their
labels, and come back if the file reappears.

Labels follow the picture, not the path: a file whose size or mtime changed is hashed again, and
when its content differs from what was labelled, the labels of that path follow the old content
to wherever it went (renumbered frames, swapped names) or, if it is gone, are set aside for the
user (``replaced``) instead of being shown on another picture. Folders holding an export (a file
named :data:`EXPORT_MARKER`) are skipped, so an export written inside the project never becomes
project images.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from annotator.errors import ImageReadError
from annotator.imageio import IMAGE_SUFFIXES, read_image_size

_CHUNK = 1 << 20
#: A file of this name marks a folder written by an export (annotator.formats writes it).
EXPORT_MARKER = ".annotator-export"


class DiskFile(NamedTuple):
    """An image file found by the walk: POSIX path relative to the root, size, mtime in ns."""

    relpath: str
    size: int
    mtime_ns: int


class FileFacts(NamedTuple):
    """What we know of a file for its row: ``content_hash`` is ``''`` and ``width``/``height``
    are ``None`` where the file was not read (no pixels are ever decoded)."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int | None
    height: int | None
    error: str | None


def walk_images(root: Path, skip: frozenset[Path]) -> dict[str, DiskFile]:
    """Every image file under ``root`` (recursive), skipping hidden entries and ``skip`` folders.

    Plain strings and tuples rather than ``Path`` objects: this runs over every file on every open.
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
        if prefix and any(entry.name == EXPORT_MARKER for entry in entries):
            continue  # an export's output folder, not project images
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.path not in skipped:
                    stack.append((entry.path, f"{prefix}{name}/"))
            elif name[name.rfind(".") :].lower() in IMAGE_SUFFIXES:  # no dot: the last char
                _add_file(found, f"{prefix}{name}", entry)
    return found


def _add_file(found: dict[str, DiskFile], relpath: str, entry: os.DirEntry[str]) -> None:
    try:
        stat = entry.stat()
    except OSError:
        return
    found[relpath] = DiskFile(relpath, stat.st_size, stat.st_mtime_ns)


def hash_file(path: str | Path) -> str:
    """Hex BLAKE2b-128 content hash: the whole file up to 3 MiB, else its size plus 1 MiB from
    the start, the middle and the end (so huge TIFFs are not read whole; enough to recognise a
    renamed file)."""
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


def read_header(path: str | Path) -> tuple[int, int, str | None]:
    """``(width, height, error)`` from the file's header: display size and ``None``, or
    ``(0, 0, why)`` when the header is unreadable."""
    try:
        width, height = read_image_size(path)
    except ImageReadError as failure:
        return 0, 0, str(failure)
    return width, height, None


def read_facts(root: Path, file: DiskFile) -> FileFacts:
    """Hash and header of one file; unreadable files get ``error`` instead of raising."""
    path = os.path.join(root, file.relpath)
    try:
        content_hash = hash_file(path)
    except OSError as error:
        return FileFacts(file.relpath, file.size, file.mtime_ns, "", 0, 0, str(error))
    width, height, error = read_header(path)
    return FileFacts(file.relpath, file.size, file.mtime_ns, content_hash, width, height, error)


def read_all_facts(root: Path, files: list[DiskFile]) -> list[FileFacts]:
    """:func:`read_facts` for many files, in order, a few threads at a time (hashing releases
    the GIL)."""
    if len(files) < 16:
        return [read_facts(root, file) for file in files]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return list(pool.map(lambda file: read_facts(root, file), files, chunksize=64))


@dataclass
class StoredImage:
    """The part of an image row reconciliation needs (``content_hash`` ``''``: never hashed)."""

    relpath: str
    size: int
    mtime_ns: int
    content_hash: str
    missing: bool


@dataclass
class ReconcilePlan:
    """What to change in the database (and which label files to move) after a walk."""

    unchanged_back: list[str]  # stored missing, now present with the same size and mtime
    changed: list[FileFacts]  # same path, new size/mtime, same picture (or never labelled)
    renames: list[tuple[str, FileFacts]]  # (old relpath, new file with the same hash)
    added: list[FileFacts]  # paths that get a new row (read only where they were candidates)
    vanished: list[str]
    #: rows whose path now holds another picture (theirs is not found): their row goes, their
    #: maps are set aside; the path gets a new row or a renamed one
    replaced: list[str]


def _split_rehashed(
    by_path: dict[str, StoredImage], facts: list[FileFacts]
) -> tuple[list[FileFacts], list[StoredImage], list[FileFacts]]:
    """(same picture, rows whose picture left the path, the new content at those paths)."""
    same, displaced_rows, displaced_facts = [], [], []
    for fact in facts:
        row = by_path[fact.relpath]
        if not fact.content_hash or fact.content_hash == row.content_hash:
            same.append(fact)  # unreadable now: keep its work where it is
        else:
            displaced_rows.append(row)
            displaced_facts.append(fact)
    return same, displaced_rows, displaced_facts


def plan_reconcile(
    root: Path, stored: list[StoredImage], disk: dict[str, DiskFile]
) -> ReconcilePlan:
    """Compare the stored rows with the walk. Read only the files whose facts decide something:
    changed files that had a hash (their work must stay on their picture) and rename candidates,
    new or changed files as large as a gone picture that has a hash (other sizes cannot hold its
    content)."""
    by_path = {row.relpath: row for row in stored}
    back, modified, fresh = [], [], []
    for relpath, file in disk.items():
        row = by_path.get(relpath)
        if row is None:
            fresh.append(file)
        elif row.size != file.size or row.mtime_ns != file.mtime_ns:
            modified.append(file)
        elif row.missing:
            back.append(relpath)
    hashed = [file for file in modified if by_path[file.relpath].content_hash]
    same, displaced, displaced_facts = _split_rehashed(by_path, read_all_facts(root, hashed))
    gone = [row for row in stored if row.relpath not in disk] + displaced
    gone_sizes = {row.size for row in gone if row.content_hash}
    unhashed = [file for file in modified if not by_path[file.relpath].content_hash]
    candidates = [file for file in fresh + unhashed if file.size in gone_sizes]
    facts = read_all_facts(root, candidates)
    renames, unmatched = _match_renames(gone, facts + displaced_facts)
    return _assemble(by_path, disk, back, same, renames, unmatched, fresh + unhashed, gone)


def _assemble(
    by_path: dict[str, StoredImage],
    disk: dict[str, DiskFile],
    back: list[str],
    same: list[FileFacts],
    renames: list[tuple[str, FileFacts]],
    unmatched: list[FileFacts],
    unread_pool: list[DiskFile],
    gone: list[StoredImage],
) -> ReconcilePlan:
    renamed = {old for old, _ in renames}
    targets = {fact.relpath for _, fact in renames}
    read = {fact.relpath: fact for fact in unmatched}
    read.update((fact.relpath, fact) for _, fact in renames)
    # a path keeps its row unless another row's picture moves in or its picture left it
    replaced = sorted(
        path for path in {row.relpath for row in gone if row.relpath in disk} | targets
        if path in by_path and path not in renamed
    )  # fmt: skip
    changed, added = list(same), []
    for file in unread_pool:
        if file.relpath in targets:
            continue
        fact = read.get(file.relpath) or _unread(file)
        in_place = file.relpath in by_path and file.relpath not in replaced
        (changed if in_place else added).append(fact)
    added.extend(
        fact for fact in unmatched
        if fact.relpath not in targets and fact.relpath in by_path
        and (fact.relpath in replaced or fact.relpath in renamed)
    )  # fmt: skip
    vanished = [row.relpath for row in gone if row.relpath not in disk and not row.missing]
    vanished = [path for path in vanished if path not in renamed]
    return ReconcilePlan(back, changed, renames, added, vanished, replaced)


def _unread(file: DiskFile) -> FileFacts:
    """A file stored without reading it: hash and header size unknown."""
    return FileFacts(file[0], file[1], file[2], "", None, None, None)


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


def list_maps(folder: Path) -> dict[str, int]:
    """``relpath -> mtime_ns`` of the stored maps under ``folder`` (``<relpath>.png`` files),
    hidden files left out, links to folders never followed (a linked file is listed: reading it
    refuses the link, and it is set aside)."""
    found: dict[str, int] = {}
    if folder.is_symlink() or not folder.is_dir():
        return found
    stack = [(os.fspath(folder), "")]
    while stack:
        current, prefix = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{entry.name}/"))
            elif entry.name.endswith(".png"):
                with contextlib.suppress(OSError):
                    found[f"{prefix}{entry.name[:-4]}"] = entry.stat(
                        follow_symlinks=False
                    ).st_mtime_ns
    return found
