"""Grouping results in ``<sidecar>/grouping/result``: ``groups.json`` and one map per image.

Maps are uint8 PNGs at the image's size (group id per pixel, 255 = no group), stored under
``maps/<relpath>.png``. :func:`export_groups` copies them (relative paths mirrored) next to a
``groups.json`` for other tools.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.grouping._cache import grouping_dir
from training.grouping.config import NO_GROUP


@dataclass
class GroupInfo:
    """One group: ``id`` (map value), ``pixels`` over the folder, ``images`` containing it
    (largest share first), ``image_pixels`` per image, ``suggested_names`` (best first),
    ``matched_class`` the class id Hungarian matching gave it (None without labels)."""

    id: int
    pixels: int
    images: list[str]
    image_pixels: dict[str, int] = field(default_factory=dict)
    suggested_names: list[str] = field(default_factory=list)
    matched_class: int | None = None


@dataclass
class GroupingResult:
    """The folder's groups (``k`` asked for; ``groups`` may be fewer after merges)."""

    k: int
    groups: list[GroupInfo]
    images: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    def group(self, group_id: int) -> GroupInfo:
        for info in self.groups:
            if info.id == group_id:
                return info
        raise KeyError(f"no group {group_id}")

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "images": self.images, "settings": self.settings,
                "groups": [asdict(g) for g in self.groups]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupingResult:
        groups = [GroupInfo(**g) for g in data["groups"]]
        return cls(int(data["k"]), groups, list(data["images"]), dict(data.get("settings", {})))


def result_dir(project: Any) -> Path:
    return grouping_dir(project) / "result"


def map_path(folder: Path, relpath: str) -> Path:
    return folder / "maps" / f"{relpath}.png"


def write_map(path: Path, groups: np.ndarray) -> None:
    """Write uint8 [H, W] group ids as a grey PNG, atomically."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(groups, np.uint8), mode="L").save(partial, format="PNG")
    os.replace(partial, path)


def read_map(path: Path) -> np.ndarray | None:
    from PIL import Image

    if not path.exists():
        return None
    with Image.open(path) as image:
        return np.asarray(image, np.uint8).copy()


def save_result(project: Any, result: GroupingResult, folder: Path | None = None) -> None:
    folder = result_dir(project) if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "groups.json.tmp"
    partial.write_text(json.dumps(result.to_json(), indent=1))
    os.replace(partial, folder / "groups.json")


def load_grouping(project: Any) -> GroupingResult | None:
    """The project's last grouping, or None when the folder was never grouped."""
    path = result_dir(project) / "groups.json"
    if not path.exists():
        return None
    return GroupingResult.from_json(json.loads(path.read_text()))


def load_group_map(project: Any, relpath: str) -> np.ndarray | None:
    """uint8 [H, W] group id per pixel of ``relpath`` (255 = no group), or None."""
    return read_map(map_path(result_dir(project), relpath))


def export_groups(project: Any, out: str | Path) -> Path:
    """Copy the maps (``out/<relpath>.png``, relative paths mirrored) and ``groups.json``."""
    result = load_grouping(project)
    if result is None:
        raise FileNotFoundError("this folder has not been grouped yet")
    out = Path(out)
    for relpath in result.images:
        source = map_path(result_dir(project), relpath)
        if source.exists():
            target = out / f"{relpath_without_suffix(relpath)}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    save_result(project, result, out)
    return out / "groups.json"


def relpath_without_suffix(relpath: str) -> str:
    return str(Path(relpath).with_suffix(""))


__all__ = ["NO_GROUP", "GroupInfo", "GroupingResult", "load_grouping", "load_group_map"]
