"""Resumable batch proposals: a settings fingerprint and a journal of finished images.

An output folder of ``annotator propose`` holds two small files next to its label PNGs:

- ``.annotator-propose.json``: the fingerprint (SHA-256 of every setting that changes a label
  map: engine config, class list, trained version, class memory, proposer flags, code version)
  and the settings themselves, written atomically (temporary name, then rename);
- ``.annotator-propose.done``: one JSON line ``{"source": ABSOLUTE INPUT, "target": PNG}`` per
  finished image, appended after its PNG was renamed into place.

A rerun with the same fingerprint skips every journaled image whose PNG is still there and
complete (ends with the PNG ``IEND`` chunk); a run with another fingerprint starts the journal
over and proposes every image again. PNGs are written atomically, so a killed run leaves whole
files or none, and the journal is a prefix of the run's items (minus unreadable ones): resuming
gives the same files a run from scratch gives. The hidden temporary files (``.NAME.PID.part``)
a killed run leaves are removed by the next run (:func:`remove_stale_parts`).

The shared loop :func:`write_in_order` drives both the single-process path
(:mod:`annotator.engine.batch`) and the Ray path (:mod:`annotator.cluster.ray_propose`):
outcomes are computed elsewhere (here, or on workers), written here, in input order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from annotator.errors import JobCancelled
from annotator.progress import Job, Progress, ShouldStop, never_stop
from annotator.wording import plural

FINGERPRINT_FILE = ".annotator-propose.json"
JOURNAL_FILE = ".annotator-propose.done"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

#: EngineConfig fields that never change a label map (speed, caches, downloads).
_RUNTIME_FIELDS = ("threads", "feature_cache_mb", "text_cache", "cache_dir", "download")

#: ``[(item index, input file)]`` -> ``(item index, outcome)`` in the same order.
OutcomeSource = Callable[[Sequence[tuple[int, Path]]], Iterator[tuple[int, Any]]]


@dataclass(frozen=True)
class Failed:
    """The outcome of an input that could not be read: ``reason`` as ``ImageReadError`` says."""

    reason: str


def config_settings(config: Any) -> dict:
    """The fields of an ``EngineConfig`` that decide its label maps, JSON-ready; a local weights
    file adds its size and modification time (a replaced file is other weights)."""
    settings = {
        name: value
        for name, value in dataclasses.asdict(config).items()
        if name not in _RUNTIME_FIELDS
    }
    weights = Path(str(config.pretrained or ""))
    if config.pretrained and weights.is_file():
        stat = weights.stat()
        settings["pretrained_file"] = [str(weights.resolve()), stat.st_size, stat.st_mtime_ns]
    return json.loads(json.dumps(settings, default=list))


def fingerprint(settings: dict) -> str:
    """SHA-256 hex digest of ``settings`` (JSON, sorted keys) plus the annotator version."""
    from annotator import __version__

    document = json.dumps({"annotator": __version__, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def png_is_complete(path: Path) -> bool:
    """True when ``path`` is a file ending with the PNG ``IEND`` chunk (not a half-written one)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() < 8 + len(_PNG_END):
                return False
            handle.seek(-len(_PNG_END), os.SEEK_END)
            return handle.read() == _PNG_END
    except OSError:
        return False


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename
    (``.NAME.PID.part``; removed if the write fails, swept by :func:`remove_stale_parts` if the
    process is killed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


#: The name :func:`write_atomically` gives its temporary files: ``.NAME.PID.part``.
_PART_NAME = re.compile(r"^\..+\.(\d+)\.part$")
#: A temporary file this old is stale even when its PID is alive (PIDs are reused); writing one
#: label PNG takes milliseconds.
STALE_PART_SECONDS = 3600.0


def remove_stale_parts(out_dir: Path) -> int:
    """Delete the temporary files (``.NAME.PID.part``) that killed runs left under ``out_dir``:
    those of a process that is gone, of this process (a run sweeps before it writes) or older
    than :data:`STALE_PART_SECONDS`. The project store (``.annotator``) is never entered.
    Returns how many were removed."""
    removed = 0
    for path in Path(out_dir).rglob(".*.part") if Path(out_dir).is_dir() else []:
        match = _PART_NAME.match(path.name)
        inside_store = ".annotator" in path.relative_to(out_dir).parts[:-1]
        if match is None or inside_store or not _is_stale(path, int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _is_stale(path: Path, pid: int) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    return pid == os.getpid() or age > STALE_PART_SECONDS or not _process_alive(pid)


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (on Windows, without a safe probe: assumed so)."""
    if os.name == "nt" or pid <= 0:
        return os.name == "nt"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


@dataclass
class ResumeState:
    """What an output folder already holds for one settings fingerprint (see the module doc)."""

    out_dir: Path
    done: dict[str, str] = field(default_factory=dict)
    restarted: bool = False
    _journal: IO[str] | None = None

    @classmethod
    def open(cls, out_dir: Path, settings: dict) -> ResumeState:
        """Read the folder's fingerprint and journal; start both over when the settings differ
        (``restarted`` is then True if a previous run had left some)."""
        out_dir = Path(out_dir)
        remove_stale_parts(out_dir)
        digest = fingerprint(settings)
        previous = _read_fingerprint(out_dir / FINGERPRINT_FILE)
        state = cls(out_dir)
        if previous == digest:
            state.done = _read_journal(out_dir / JOURNAL_FILE)
        else:
            state.restarted = previous is not None
            document = {"fingerprint": digest, "settings": settings}
            write_atomically(out_dir / JOURNAL_FILE, b"")
            write_atomically(
                out_dir / FINGERPRINT_FILE, (json.dumps(document, indent=1) + "\n").encode()
            )
        return state

    def finished(self, source: Path) -> Path | None:
        """The PNG an earlier run wrote for ``source``, when it is still there and complete."""
        target = self.done.get(source_key(source))
        if target is None or not png_is_complete(self.out_dir / target):
            return None
        return self.out_dir / target

    def record(self, source: Path, target: Path) -> None:
        """Journal ``source`` -> ``target`` (call after the PNG is in place)."""
        self.append(source, target.relative_to(self.out_dir).as_posix())

    def append(self, source: Path, target: str) -> None:
        """Journal ``source`` -> ``target`` (a string: what :attr:`done` maps it to)."""
        if self._journal is None:
            self._journal = open(self.out_dir / JOURNAL_FILE, "a", encoding="utf-8")  # noqa: SIM115
        entry = {"source": source_key(source), "target": target}
        self._journal.write(json.dumps(entry) + "\n")
        self._journal.flush()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def source_key(source: Path) -> str:
    """How the journal names an input file (its absolute path)."""
    return str(Path(source).resolve())


def _read_fingerprint(path: Path) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_journal(path: Path) -> dict[str, str]:
    """``source -> target`` of every whole line (a killed run may leave a partial last one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    done: dict[str, str] = {}
    for line in text.splitlines(keepends=True):
        try:
            entry = json.loads(line)
            done[entry["source"]] = entry["target"]
        except (ValueError, KeyError, TypeError):
            continue
    return done


def local_outcomes(compute: Callable[[Path], Any]) -> OutcomeSource:
    """An :data:`OutcomeSource` that computes each input here, one at a time, lazily."""

    def source(pending: Sequence[tuple[int, Path]]) -> Iterator[tuple[int, Any]]:
        return ((index, compute(path)) for index, path in pending)

    return source


@dataclass
class LoopCounts:
    """What :func:`write_in_order` saw: images skipped as done, ``(path, reason)`` failures."""

    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def write_in_order(
    items: Sequence[tuple[Path, Path]],
    outcomes: OutcomeSource,
    write: Callable[[Path, Path, Any, set[Path]], Path | None],
    resume: ResumeState | None,
    should_stop: ShouldStop = never_stop,
    failed: list[tuple[Path, str]] | None = None,
) -> Job[LoopCounts]:
    """Write every ``(file, relative)`` of ``items`` in order; yields Progress per item.

    Journaled items (``resume``) are skipped, their PNG names kept taken; the others' outcomes
    come from ``outcomes`` (in item order) and go to ``write(file, relative, outcome, taken)``,
    which returns the PNG it wrote (journaled) or None. :class:`Failed` outcomes are appended to
    ``failed`` (a new list unless given) in item order."""
    skip = _skipped_targets(items, resume)
    pending = [(i, path) for i, (path, _) in enumerate(items) if i not in skip]
    stream, taken = iter(outcomes(pending)), set()
    counts = LoopCounts(failed=[] if failed is None else failed)
    try:
        for done, (path, relative) in enumerate(items):
            if should_stop():
                raise JobCancelled(f"Stopped after {done} of {plural(len(items), 'image')}")
            if done in skip:
                taken.add(skip[done])
                counts.skipped += 1
            else:
                _write_next(stream, done, path, relative, write, resume, taken, counts)
            yield Progress(done + 1, len(items), str(relative))
    finally:
        _close(stream)
        if resume is not None:
            resume.close()
    return counts


def _skipped_targets(items: Sequence[tuple[Path, Path]], resume: ResumeState | None) -> dict:
    if resume is None:
        return {}
    found = ((i, resume.finished(path)) for i, (path, _) in enumerate(items))
    return {i: target for i, target in found if target is not None}


def _write_next(
    stream: Iterator[tuple[int, Any]], done: int, path: Path, relative: Path,
    write: Callable, resume: ResumeState | None, taken: set[Path], counts: LoopCounts,
) -> None:  # fmt: skip
    index, outcome = next(stream)
    if index != done:
        raise RuntimeError(f"outcome for item {index} arrived where item {done} was expected")
    if isinstance(outcome, Failed):
        counts.failed.append((path, outcome.reason))
        return
    target = write(path, relative, outcome, taken)
    if target is not None and resume is not None:
        resume.record(path, target)


def _close(stream: Iterable) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
