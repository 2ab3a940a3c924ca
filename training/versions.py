"""Versioned checkpoints of the head on a plain folder, with an "active" pointer.

Layout of a version store folder (``<sidecar>/models`` for a project)::

    v0001/head.pt      the head's weights (``torch.save`` of a state dict)
    v0001/meta.json    spec, class names at training time, metrics, settings, creation time
    active.json        {"active": "v0001"} or {"active": null} (pure zero-shot)

A version is written into a hidden temporary folder and renamed into place, and ``active.json``
is replaced atomically, so a crash leaves either the old or the new state, never half a version.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.errors import ModelVersionError
from training.head import HeadSpec, PixelHead

_ACTIVE = "active.json"
_META = "meta.json"
_WEIGHTS = "head.pt"
_VERSION_ID = re.compile(r"v[0-9]{1,9}")


@dataclass(frozen=True)
class ModelVersion:
    """One trained model version: ``id`` ("v0003"), ``created`` (Unix time), ``metrics`` and
    ``settings`` (JSON dicts), ``class_names`` ({class id: name at training time}), ``active``."""

    id: str
    created: float
    metrics: dict[str, Any]
    settings: dict[str, Any]
    class_names: dict[int, str]
    active: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _write_json_atomic(path: Path, value: Any) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(value, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class VersionStore:
    """Model versions in ``folder`` (created on the first save)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _version_dirs(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if p.is_dir() and not p.is_symlink()]
        return sorted(p for p in found if _VERSION_ID.fullmatch(p.name) and (p / _META).exists())

    def _version_path(self, version_id: str) -> Path:
        """``folder/version_id`` for a well-formed id (``v`` and digits) that is a real folder,
        never a symlink, so ``active.json`` or a caller cannot name a folder outside."""
        path = self.folder / str(version_id)
        if not _VERSION_ID.fullmatch(str(version_id)) or path.is_symlink():
            raise ModelVersionError(
                f"{version_id!r} is not a model version of this project (versions are folders "
                f"named v0001, v0002, ... inside {self.folder}); choose one from the list."
            )
        return path

    def active_id(self) -> str | None:
        """Id of the active version, or None (pure zero-shot, also when ``active.json`` names
        something that is not a version folder here)."""
        path = self.folder / _ACTIVE
        if not path.exists() or path.is_symlink():
            return None
        active = json.loads(path.read_text(encoding="utf-8")).get("active")
        if not isinstance(active, str) or not _VERSION_ID.fullmatch(active):
            return None
        return active if (self._version_path(active) / _META).exists() else None

    def set_active(self, version_id: str | None) -> None:
        """Make ``version_id`` the active version (None: back to pure zero-shot)."""
        if version_id is not None and not (self._version_path(version_id) / _META).exists():
            raise ModelVersionError(f"There is no model version {version_id!r} to activate.")
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.folder / _ACTIVE, {"active": version_id})

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        active = self.active_id()
        return [self._read_meta(p, active) for p in self._version_dirs()]

    def get(self, version_id: str) -> ModelVersion:
        path = self._version_path(version_id)
        if not (path / _META).exists():
            raise ModelVersionError(f"There is no model version {version_id!r}.")
        return self._read_meta(path, self.active_id())

    @staticmethod
    def _read_meta(path: Path, active: str | None) -> ModelVersion:
        meta = json.loads((path / _META).read_text(encoding="utf-8"))
        return ModelVersion(
            id=path.name,
            created=float(meta["created"]),
            metrics=meta.get("metrics", {}),
            settings=meta.get("settings", {}),
            class_names={int(k): v for k, v in meta.get("class_names", {}).items()},
            active=path.name == active,
            extra=meta.get("extra", {}),
        )

    def save(
        self,
        head: PixelHead,
        class_names: dict[int, str],
        metrics: dict[str, Any],
        settings: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Write a new version (not activated) and return it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=self.folder, prefix=".new-"))
        try:
            meta = {
                "created": time.time(),
                "spec": head.spec.to_json(),
                "class_names": {str(k): v for k, v in class_names.items()},
                "metrics": metrics,
                "settings": settings,
                "extra": extra or {},
            }
            torch.save(head.state_dict(), temp / _WEIGHTS)
            (temp / _META).write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
            version_id = self._rename_into_place(temp)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return self.get(version_id)

    def _rename_into_place(self, temp: Path) -> str:
        dirs = self._version_dirs()
        number = int(dirs[-1].name[1:]) + 1 if dirs else 1
        while True:
            target = self.folder / f"v{number:04d}"
            try:
                os.rename(temp, target)  # fails if target exists: never overwrite a version
                return target.name
            except OSError:
                if not target.exists():
                    raise
                number += 1

    def load_head(self, version_id: str) -> PixelHead:
        """The head of ``version_id`` in eval mode on the CPU."""
        path = self._version_path(version_id)
        try:
            meta = json.loads((path / _META).read_text(encoding="utf-8"))
            head = PixelHead(HeadSpec.from_json(meta["spec"]))
            state = torch.load(path / _WEIGHTS, map_location="cpu", weights_only=True)
            head.load_state_dict(state)
        except (OSError, KeyError, ValueError, RuntimeError, pickle.UnpicklingError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise ModelVersionError(
                f"Model version {version_id} cannot be read ({reason}); roll back to another "
                "version or retrain."
            ) from error
        return head.eval()
