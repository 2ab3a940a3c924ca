"""A project's model versions: list, activate, roll back, and the active version's adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.adapter import FusionSettings, TrainedAdapter
from training.filters import FilterSpec
from training.versions import ModelVersion, VersionStore

MODELS_FOLDER = "models"


def version_store(project: Any) -> VersionStore:
    """The version store of ``project``: ``<sidecar>/models`` (refused if it is a symlink, see
    ``Project.sidecar_path``)."""
    if hasattr(project, "sidecar_path"):
        return VersionStore(project.sidecar_path(MODELS_FOLDER))
    return VersionStore(Path(project.sidecar) / MODELS_FOLDER)


def list_versions(project: Any) -> list[ModelVersion]:
    """Every trained version of ``project``, oldest first (``.active`` marks the one in use)."""
    return version_store(project).list()


def active_version(project: Any) -> ModelVersion | None:
    store = version_store(project)
    active = store.active_id()
    return None if active is None else store.get(active)


def seen_class_ids(version: ModelVersion) -> set[int]:
    """Classes that had human labels when ``version`` was trained. Rows the head learned from
    generated features or pseudo-labels only are not among them (older versions did not record
    the difference: all their rows count as seen)."""
    extra = version.extra
    return {int(c) for c in extra.get("seen_class_ids", extra.get("class_ids", []))}


def activate_version(project: Any, version_id: str | None) -> None:
    """Use ``version_id`` for proposals from now on (None: pure zero-shot).

    A class is seen only when it has human labels: a version marks ``novel`` False for its seen
    classes (:func:`seen_class_ids`: human-labelled when it was trained) and True for the others,
    even when its head learned them from pseudo-labels or generated features. Zero-shot only
    (None) leaves the marks as they are.
    """
    store = version_store(project)
    store.set_active(version_id)
    if version_id is None or project.read_only:
        return
    seen = seen_class_ids(store.get(version_id))
    for info in project.list_classes():
        novel = info.id not in seen
        if info.novel != novel:
            project.set_novel(info.id, novel)


def rollback(project: Any) -> ModelVersion | None:
    """Activate the version before the active one (or pure zero-shot); return it (or None)."""
    versions = list_versions(project)
    ids = [v.id for v in versions]
    active = next((v.id for v in versions if v.active), None)
    if active is None:
        return None
    position = ids.index(active)
    previous = versions[position - 1] if position > 0 else None
    activate_version(project, None if previous is None else previous.id)
    return previous


def adapter_for_version(project: Any, version_id: str) -> TrainedAdapter:
    """The :class:`TrainedAdapter` of one version, with current class names for its class ids."""
    store = version_store(project)
    version = store.get(version_id)
    names = {info.id: info.name for info in project.list_classes()}
    extra = version.extra
    adapter = TrainedAdapter(
        store.load_head(version_id),
        {cid: names[cid] for cid in extra.get("class_ids", []) if cid in names},
        FilterSpec(tuple(extra["filter_sigmas"])),
        FusionSettings(**extra["fusion"]),
        version_id=version_id,
        patch_size=extra.get("patch_size"),
        seen_class_ids=seen_class_ids(version),
    )
    from training.zegformer import attach_segment_model

    return attach_segment_model(adapter, store.folder / version_id, names)


def load_active_adapter(project: Any) -> TrainedAdapter | None:
    """The active version's adapter for ``segmenter.predict(classes, adapter=...)``, or None."""
    active = version_store(project).active_id()
    return None if active is None else adapter_for_version(project, active)
