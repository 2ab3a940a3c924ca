"""Source ids kept across import and export: COCO category ids, names and supercategories, and
image ids, so results files and models keyed to the original ids still match after a round trip.

Stored in the project setting :data:`SETTING`::

    {"categories": {"<class id>": {"id": 67, "supercategory": "furniture"}},
     "images": {"<relpath>": 139}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from annotator.project import ClassInfo, Project

SETTING = "formats.source_ids"


def _load(project: Project) -> dict[str, dict[str, Any]]:
    stored = project.get_setting(SETTING, None)
    if not isinstance(stored, dict):
        stored = {}
    return {
        "categories": dict(stored.get("categories") or {}),
        "images": dict(stored.get("images") or {}),
    }


def remember_source_ids(
    project: Project, categories: dict[int, dict[str, Any]], images: dict[str, Any]
) -> None:
    """Record ``class id -> {"id", "supercategory"}`` and ``relpath -> image id`` (only int ids
    are kept: COCO tools expect ints). Later imports override earlier ones."""
    if project.read_only:
        return
    stored = _load(project)
    for class_id, entry in categories.items():
        if _is_int(entry.get("id")):
            stored["categories"][str(class_id)] = {
                "id": int(entry["id"]),
                "supercategory": str(entry.get("supercategory") or ""),
            }
    for relpath, image_id in images.items():
        if _is_int(image_id):
            stored["images"][relpath] = int(image_id)
    project.set_setting(SETTING, stored)


def category_ids(project: Project, classes: Iterable[ClassInfo]) -> dict[int, tuple[int, str]]:
    """``class id -> (COCO category id, supercategory)``: the source id where one was imported
    (and no earlier class took it), else display order + 1 where free, else a fresh id above
    every id in use."""
    classes = list(classes)
    stored = _load(project)["categories"]
    result: dict[int, tuple[int, str]] = {}
    used: set[int] = set()
    for info in classes:
        entry = stored.get(str(info.id))
        if isinstance(entry, dict) and _is_int(entry.get("id")) and int(entry["id"]) not in used:
            result[info.id] = (int(entry["id"]), str(entry.get("supercategory") or ""))
            used.add(int(entry["id"]))
    return _fill_fresh(classes, result, used, lambda c: c.id, "")


def image_ids(project: Project, relpaths: list[str]) -> dict[str, int]:
    """``relpath -> COCO image id``: the imported source id if any (unique), else position + 1
    where free, else fresh ids above every id in use."""
    stored = _load(project)["images"]
    result: dict[str, int] = {}
    used: set[int] = set()
    for relpath in relpaths:
        value = stored.get(relpath)
        if _is_int(value) and int(value) not in used:
            result[relpath] = int(value)
            used.add(int(value))
    filled = _fill_fresh(relpaths, {k: (v, "") for k, v in result.items()}, used, str, "")
    return {k: v[0] for k, v in filled.items()}


def _fill_fresh(items: list, result: dict, used: set[int], key: Any, extra: str) -> dict:
    """Give every item without an id its position + 1 if free, else the next id above all."""
    top, keep_positions = max(used, default=0), not used
    for position, item in enumerate(items):
        if key(item) in result:
            continue
        wanted = position + 1 if keep_positions else top + 1
        while wanted in used:
            wanted += 1
        result[key(item)] = (wanted, extra)
        used.add(wanted)
        top = max(top, wanted)
    return {key(item): result[key(item)] for item in items}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
