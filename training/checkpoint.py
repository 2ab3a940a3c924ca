"""Where a restarted multi-process training run resumes (``torchrun --max-restarts``).

Rank 0 writes, every rank reads, one folder on the project's (shared) storage::

    <sidecar>/training-checkpoint/
        key.json              what the run trains (settings, split, classes): a restart of
                              another run never resumes from it
        images-<name>.pt      the gathered per-image results of one encoding pass (the training
                              samples of the human labels, the pseudo-labels of each round)
        fit-<round>.pt        the head, optimiser, schedule and batch generator of the round
                              being fitted, every ``every`` steps
        versions.json         {round: version id} of the rounds already saved

A resumed run skips the encoding passes it finds, fits on from the last saved step (the same
batches follow: the result equals an uninterrupted run) and does not save a finished round's
version twice (its head is read back from the version store). The held-out images are encoded
again (each rank keeps only its share, in memory). Files are written atomically and read with
``torch.load(weights_only=True)``: tensors, numbers and strings only, never arbitrary pickles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from annotator.progress import Progress
from annotator.wording import plural
from training.cagnet.data import ImageMaps
from training.fit import SampleSet
from training.parallel import map_images

FOLDER = "training-checkpoint"
_TYPES = {"SampleSet": SampleSet, "ImageMaps": ImageMaps}


def run_key(settings: dict[str, Any]) -> str:
    """A digest of what a run trains (JSON-able ``settings``)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _encode(value: Any) -> Any:
    """``value`` as tensors, lists, dicts, numbers and strings (``weights_only``-loadable)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__type__": type(value).__name__, **fields}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict) and value.get("__type__") in _TYPES:
        kind = _TYPES[value["__type__"]]
        return kind(**{k: _decode(v) for k, v in value.items() if k != "__type__"})
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class TrainCheckpoint:
    """The checkpoint folder of one run. ``writer``: this process saves (rank 0); ``resume``:
    a restart, which may read what an earlier attempt of the same run (same ``key``) saved."""

    def __init__(self, folder: Path, writer: bool, resume: bool, every: int = 25) -> None:
        self.folder = Path(folder)
        self.writer = writer
        self.resume = resume
        self.every = max(1, every)
        self.key: str | None = None
        self.resumed: list[str] = []  # what was read back, for the user

    def start(self, key: str) -> None:
        """Bind to the run ``key``; a writer starting afresh (or finding another run's files)
        clears the folder. Call on every rank, after rank 0 and before any read."""
        self.key = key
        if self.writer and not self._matches():
            self.clear()
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.folder / "key.json", json.dumps({"key": key}).encode())

    def _matches(self) -> bool:
        if not self.resume:
            return False
        try:
            return json.loads((self.folder / "key.json").read_text())["key"] == self.key
        except (OSError, ValueError, KeyError):
            return False

    def _read(self, name: str) -> Any:
        if self.key is None or not self._matches():
            return None
        path = self.folder / name
        if not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def _write(self, name: str, value: Any) -> None:
        if self.writer and self.key is not None:
            temp = self.folder / f".{name}.tmp"
            torch.save(value, temp)
            os.replace(temp, self.folder / name)

    def images(self, name: str) -> list[Any] | None:
        """The saved results of encoding pass ``name`` (image order), or None."""
        saved = self._read(f"images-{name}.pt")
        if saved is not None:
            self.resumed.append(f"{name}: {plural(len(saved), 'image')}")
        return None if saved is None else _decode(saved)

    def save_images(self, name: str, results: list[Any]) -> None:
        self._write(f"images-{name}.pt", _encode(results))

    def fit_state(self, round_index: int) -> dict[str, Any] | None:
        """The last saved optimiser state of ``round_index`` (``step``, ``head``, ...), or None."""
        state = self._read(f"fit-{round_index}.pt")
        if state is not None:
            self.resumed.append(f"round {round_index + 1}: fit from step {state['step']}")
        return state

    def save_fit(self, round_index: int, state: dict[str, Any]) -> None:
        self._write(f"fit-{round_index}.pt", state)

    def version(self, round_index: int) -> str | None:
        """The version id already saved for ``round_index``, or None."""
        saved = self._versions() if self._matches() else {}
        found = saved.get(str(round_index))
        if found:
            self.resumed.append(f"round {round_index + 1}: saved as {found}")
        return found

    def save_version(self, round_index: int, version_id: str) -> None:
        if self.writer and self.key is not None:
            saved = {**self._versions(), str(round_index): version_id}
            _write_atomic(self.folder / "versions.json", json.dumps(saved).encode())

    def _versions(self) -> dict[str, str]:
        try:
            return dict(json.loads((self.folder / "versions.json").read_text()))
        except (OSError, ValueError):
            return {}

    def clear(self) -> None:
        """Remove the folder (the writer, when the run finished or starts afresh)."""
        if self.writer and self.folder.is_dir():
            shutil.rmtree(self.folder)


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


class RoundCheckpoint:
    """The optimiser checkpoint of one round as :func:`training.fit.fit_head` uses it: rank 0
    reads and every rank receives the state (``collective.broadcast``), so all resume alike."""

    def __init__(self, checkpoint: TrainCheckpoint, round_index: int, collective: Any) -> None:
        self.checkpoint = checkpoint
        self.round_index = round_index
        self.collective = collective
        self.every = checkpoint.every

    def load(self) -> dict[str, Any] | None:
        return self.collective.broadcast(lambda: self.checkpoint.fit_state(self.round_index))

    def save(self, state: dict[str, Any]) -> None:
        self.checkpoint.save_fit(self.round_index, state)


def cached_pass(
    checkpoint: TrainCheckpoint | None, collective: Any, name: str, job: tuple
) -> Generator[Progress, None, list[Any]]:
    """:func:`training.parallel.map_images` of one encoding pass (``job``: its arguments after
    the collective), or its results from ``checkpoint`` (read by rank 0, sent to all) when a
    failed attempt of this run finished it; saved once done."""
    if checkpoint is not None:
        saved = collective.broadcast(lambda: checkpoint.images(name))
        if saved is not None:
            return saved
    results = yield from map_images(collective, *job)
    if checkpoint is not None:
        checkpoint.save_images(name, results)
    return results


def saved_version(
    checkpoint: TrainCheckpoint | None, collective: Any, round_index: int
) -> str | None:
    """The version a failed attempt of this run already saved for ``round_index``, on every
    process (rank 0 reads); None without a checkpoint or when there is none."""
    if checkpoint is None:
        return None
    return collective.broadcast(lambda: checkpoint.version(round_index))
