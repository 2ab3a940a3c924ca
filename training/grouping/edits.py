"""What a person does with groups: name one (proposals on every image with it), merge, split.

Naming writes *proposals*, never human labels: each image containing the group gets the group's
pixels set to the class in its proposal (an existing proposal keeps its other pixels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annotator.progress import Job, Progress, ShouldStop, never_stop
from training.grouping.config import MAX_GROUPS, NO_GROUP
from training.grouping.store import (
    GroupInfo,
    GroupingResult,
    load_group_map,
    load_grouping,
    map_path,
    result_dir,
    save_result,
    write_map,
)


def _require(project: Any) -> GroupingResult:
    from training.grouping.job import GroupingError

    result = load_grouping(project)
    if result is None:
        raise GroupingError("this folder has not been grouped yet; run the grouping first")
    return result


def _proposal_with_group(project: Any, relpath: str, groups: np.ndarray, group_id: int,
                         class_id: int) -> np.ndarray:  # fmt: skip
    """The image's proposal (or an empty one) with the group's pixels set to ``class_id``."""
    current = project.load_proposal(relpath)
    if current is None or current.shape != groups.shape:
        current = np.full(groups.shape, project.unlabeled_value, project.label_dtype)
    dtype = np.uint16 if class_id > 254 else current.dtype
    merged = current.astype(dtype, copy=True)
    if dtype != current.dtype:
        merged[current == 255] = 65535
    merged[groups == group_id] = class_id
    return merged


def name_group(
    project: Any, group_id: int, class_id: int, should_stop: ShouldStop = never_stop
) -> Job[list[str]]:
    """Write class ``class_id`` as a proposal for group ``group_id``'s pixels on every image
    containing it (a batch job; returns the relative paths written). Human labels are untouched."""
    result = _require(project)
    info = result.group(group_id)
    project.get_class(class_id)  # raises for an unknown class
    written: list[str] = []
    for done, relpath in enumerate(info.images, 1):
        if should_stop():
            break
        groups = load_group_map(project, relpath)
        if groups is not None:
            record = project.get_image(relpath)
            proposal = _proposal_with_group(project, relpath, groups, group_id, class_id)
            project.save_proposal(relpath, proposal, record.mean_confidence)
            written.append(relpath)
        yield Progress(done, len(info.images), f"naming {relpath}", {"phase": "name"})
    info.matched_class = class_id
    save_result(project, result)
    return written


def _recount(result: GroupingResult, changed: dict[str, np.ndarray], ids: list[int]) -> None:
    """Update the pixel counts and image lists of groups ``ids`` from the ``changed`` maps."""
    min_share = float(result.settings.get("min_share", 0.01))
    for group_id in ids:
        info = result.group(group_id)
        for relpath, groups in changed.items():
            count = int((groups == group_id).sum())
            info.image_pixels.pop(relpath, None)
            if count >= min_share * groups.size:
                info.image_pixels[relpath] = count
        info.image_pixels = dict(sorted(info.image_pixels.items(), key=lambda kv: -kv[1]))
        info.images = list(info.image_pixels)
        info.pixels = int(sum(info.image_pixels.values()))


def merge_groups(project: Any, target: int, sources: list[int]) -> GroupingResult:
    """Fold groups ``sources`` into group ``target`` (maps rewritten, stats updated)."""
    result = _require(project)
    sources = [s for s in sources if s != target]
    touched = {r for s in sources for r in result.group(s).images} | set(
        result.group(target).images
    )
    changed = {}
    for relpath in sorted(touched):
        groups = load_group_map(project, relpath)
        if groups is None:
            continue
        groups[np.isin(groups, sources)] = target
        write_map(map_path(result_dir(project), relpath), groups)
        changed[relpath] = groups
    result.groups = [g for g in result.groups if g.id not in sources]
    _recount(result, changed, [target])
    save_result(project, result)
    return result


def split_group(project: Any, group_id: int, segmenter: Any = None) -> GroupingResult:
    """Split group ``group_id`` in two by 2-means over its pixels' embeddings; the new half gets
    the lowest free id. Needs the grouping cache (the folder grouped on this machine)."""
    from training.grouping.job import GroupingError, reload_embedder

    result = _require(project)
    free = sorted(set(range(MAX_GROUPS)) - {g.id for g in result.groups})
    if not free:
        raise GroupingError("no free group id left; merge some groups first")
    embedder = reload_embedder(project, segmenter, result)
    changed = embedder.split(result.group(group_id).images, group_id, free[0])
    result.groups.append(GroupInfo(free[0], 0, []))
    _recount(result, changed, [group_id, free[0]])
    save_result(project, result)
    return result


__all__ = ["NO_GROUP", "merge_groups", "name_group", "split_group"]
