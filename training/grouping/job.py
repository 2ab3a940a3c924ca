"""``group_folder``: the MaskContrast folder job (features -> head -> K-means -> maps -> groups).

Resumable: per-image features and proposals are cached, the trained head is kept with a
fingerprint of what it depends on (so another ``k`` reuses it), and maps already written for the
same run are kept. RAM stays flat in the number of images: one batch of cached images, a bounded
pixel sample and the centres are all that is held at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np

from annotator.errors import AnnotatorError, ImageReadError, JobCancelled
from annotator.progress import Job, Progress, ShouldStop, never_stop
from training.grouping import _cache
from training.grouping.config import GroupConfig
from training.grouping.features import compute_image_features, resize_nearest, uses_clip
from training.grouping.fit import embed, fit_head, folder_statistics
from training.grouping.kmeans import MiniBatchKMeans, Reservoir, kmeans_plus_plus
from training.grouping.naming import summarise
from training.grouping.proposals import add_human_segments, propose_masks
from training.grouping.store import GroupingResult, map_path, result_dir, save_result, write_map


class GroupingError(AnnotatorError):
    """The folder cannot be grouped as asked (no readable image, fewer pixels than groups)."""


class _Folder:
    """The readable images of a project and their cache keys; loads cache entries on demand."""

    def __init__(self, project: Any, segmenter: Any, config: GroupConfig) -> None:
        self.project, self.segmenter, self.config = project, segmenter, config
        self.clip = uses_clip(segmenter)
        self.relpaths = [r.relpath for r in project.list_images() if not r.error]
        self.keys: dict[str, str] = {}

    def key(self, relpath: str) -> str:
        if relpath not in self.keys:
            self.keys[relpath] = _cache.cache_key(
                self.project, relpath, self.config.size, self.clip
            )
        return self.keys[relpath]

    def load(self, index: int) -> _cache.CachedImage:
        item = _cache.load_cached(self.project, self.key(self.relpaths[index]))
        if item is None:
            raise GroupingError("the grouping cache changed while grouping; run it again")
        return item


def _prepare_image(folder: _Folder, relpath: str) -> None:
    """Compute and cache one image's features and mask proposals (skip if cached)."""
    project, key = folder.project, folder.key(relpath)
    if _cache.load_cached(project, key) is not None:
        return
    features = compute_image_features(
        project.load_image(relpath), folder.segmenter, folder.config.size
    )
    proposals = propose_masks(features.filters, features.image)
    labels = project.load_labels(relpath)
    if labels is not None:
        small = resize_nearest(labels, features.size)
        proposals = add_human_segments(proposals, small, int(project.unlabeled_value))
    _cache.save_cached(project, key, _cache.CachedImage(features, proposals))


def _prepare(folder: _Folder, should_stop: ShouldStop) -> Iterator[Progress]:
    total, kept = len(folder.relpaths), []
    for done, relpath in enumerate(folder.relpaths, 1):
        _check(should_stop)
        try:
            _prepare_image(folder, relpath)
            kept.append(relpath)
        except ImageReadError:
            pass  # the store marks the record; the image is left out of the groups
        yield Progress(done, total, f"features {relpath}", {"phase": "features"})
    folder.relpaths = kept
    if not kept:
        raise GroupingError("no readable image in this folder to group; add images first")


def _check(should_stop: ShouldStop) -> None:
    if should_stop():
        raise JobCancelled("grouping cancelled; run it again to continue where it stopped")


def _head_path(project: Any) -> Any:
    return _cache.grouping_dir(project) / "head.pt"


def _load_head(project: Any, fingerprint: str) -> Any:
    import torch

    path = _head_path(project)
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    return saved["head"] if saved.get("fingerprint") == fingerprint else None


def _train(folder: _Folder, should_stop: ShouldStop) -> Iterator[Progress]:
    """Yields progress; the head (or the raw statistics when steps == 0) ends in ``folder``."""
    import torch

    config = folder.config
    if config.steps == 0:
        sample = [folder.load(i) for i in range(min(len(folder.relpaths), 32))]
        folder.head, folder.stats = None, folder_statistics(sample)
        return
    fingerprint = config.head_fingerprint(folder.relpaths, folder.clip)
    folder.head, folder.stats = _load_head(folder.project, fingerprint), None
    if folder.head is not None:
        return
    job = fit_head(folder.load, len(folder.relpaths), config, should_stop)
    while True:
        try:
            step, loss = next(job)
        except StopIteration as done:
            folder.head = done.value
            break
        yield Progress(step, config.steps, f"training step {step}",
                       {"phase": "train", "step": step, "loss": loss})  # fmt: skip
    _check(should_stop)
    torch.save({"fingerprint": fingerprint, "head": folder.head}, _head_path(folder.project))


def _sample_pixels(embedding: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [min(count, h*w), E] random pixels of ``embedding`` [E, h, w]."""
    flat = embedding.reshape(embedding.shape[0], -1).T
    take = rng.choice(len(flat), size=min(count, len(flat)), replace=False)
    return np.ascontiguousarray(flat[take], np.float32)


def _cluster(folder: _Folder, should_stop: ShouldStop) -> Iterator[Progress]:
    """Seed K centres from a reservoir sample, then stream mini-batches; ends in folder.centres."""
    config, count = folder.config, len(folder.relpaths)
    rng = np.random.default_rng(config.seed)
    reservoir = Reservoir(max(20 * config.k, 20000), rng)
    total = count * (config.kmeans_epochs + 1)
    for i in range(count):
        _check(should_stop)
        reservoir.add(_sample_pixels(_embed(folder, i), config.pixels_per_image // 4, rng))
        yield Progress(i + 1, total, "seeding groups", {"phase": "kmeans"})
    sample = reservoir.sample()
    if len(sample) < config.k:
        raise GroupingError(f"the folder has fewer pixels than the {config.k} groups asked for")
    kmeans = MiniBatchKMeans(kmeans_plus_plus(sample, config.k, rng))
    for epoch in range(config.kmeans_epochs):
        for n, i in enumerate(rng.permutation(count)):
            _check(should_stop)
            kmeans.update(_sample_pixels(_embed(folder, int(i)), config.pixels_per_image, rng))
            done = count * (epoch + 1) + n + 1
            yield Progress(done, total, f"K-means pass {epoch + 1}", {"phase": "kmeans"})
    folder.centres = kmeans.centres


def _embed(folder: _Folder, index: int) -> np.ndarray:
    """float32 [E, h, w] embedding of image ``index``, computed once per head and kept on disk
    (float16) so the K-means passes and the maps do not run the head again."""
    directory = getattr(folder, "embed_dir", None)
    if directory is None:
        return embed(folder.head, folder.stats, folder.load(index))
    path = directory / f"{folder.key(folder.relpaths[index])}.npy"
    if path.exists():
        return np.load(path).astype(np.float32)
    embedding = embed(folder.head, folder.stats, folder.load(index))
    np.save(path, embedding.astype(np.float16))
    return embedding


def _use_embedding_cache(folder: _Folder) -> None:
    """Embeddings of the current head live in ``grouping/embeddings/<fingerprint>``."""
    import shutil

    fingerprint = folder.config.head_fingerprint(folder.relpaths, folder.clip)
    root = _cache.grouping_dir(folder.project) / "embeddings"
    for old in root.glob("*") if root.exists() else []:
        if old.name != fingerprint:
            shutil.rmtree(old, ignore_errors=True)
    folder.embed_dir = root / fingerprint
    folder.embed_dir.mkdir(parents=True, exist_ok=True)


def group_map(folder: _Folder, index: int) -> np.ndarray:
    """uint8 [H, W] group ids at the original size: squared distances to the centres at grouping
    resolution are upsampled bilinearly, then the nearest centre wins (smooth boundaries)."""
    import cv2

    item = folder.load(index)
    embedding = _embed(folder, index)
    dim, height, width = embedding.shape
    flat = embedding.reshape(dim, -1).T
    centres = folder.centres
    distance = (centres**2).sum(1)[None] - 2 * flat @ centres.T
    big_h, big_w = item.features.original_size
    planes = distance.T.reshape(len(centres), height, width)
    up = np.stack([cv2.resize(p, (big_w, big_h), interpolation=cv2.INTER_LINEAR) for p in planes])
    return np.argmin(up, axis=0).astype(np.uint8)


def _run_marker(folder: _Folder) -> dict[str, Any]:
    config = folder.config
    return {"fingerprint": config.head_fingerprint(folder.relpaths, folder.clip),
            "settings": asdict(config), "centres": folder.centres.round(6).tolist()}  # fmt: skip


def _assign(folder: _Folder, should_stop: ShouldStop) -> Iterator[Progress]:
    """Write every image's map into ``result/partial``; keep maps of an interrupted same run."""
    import shutil

    partial = result_dir(folder.project) / "partial"
    marker, marker_path = _run_marker(folder), partial / "run.json"
    if not marker_path.exists() or json.loads(marker_path.read_text()) != marker:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        marker_path.write_text(json.dumps(marker))
    for done, relpath in enumerate(folder.relpaths, 1):
        _check(should_stop)
        target = map_path(partial, relpath)
        if not target.exists():
            write_map(target, group_map(folder, done - 1))
        yield Progress(done, len(folder.relpaths), f"grouping {relpath}", {"phase": "assign"})


def _publish(folder: _Folder, result: GroupingResult) -> None:
    """Move the finished maps into place and write ``groups.json``."""
    import shutil

    final, partial = result_dir(folder.project), result_dir(folder.project) / "partial"
    shutil.rmtree(final / "maps", ignore_errors=True)
    (partial / "maps").rename(final / "maps")
    shutil.rmtree(partial, ignore_errors=True)
    save_result(folder.project, result)


def group_folder(
    project: Any,
    segmenter: Any,
    k: int | None = None,
    config: GroupConfig | None = None,
    should_stop: ShouldStop = never_stop,
) -> Job[GroupingResult]:
    """Group every readable image of ``project`` into ``k`` groups (a batch job).

    ``segmenter``: the engine (dense CLIP features and name suggestions when its weights are
    loaded) or None (filter features only). Yields :class:`Progress` with ``data["phase"]`` in
    features, train (with "step", "loss"), kmeans, assign, summarise; returns the
    :class:`GroupingResult` also stored under ``<sidecar>/grouping/result``. Raises
    :class:`JobCancelled` when ``should_stop()`` turns true (run again to resume) and
    :class:`GroupingError` when there is nothing to group.
    """
    config = config or GroupConfig()
    if k is not None and k != config.k:
        from dataclasses import replace

        config = replace(config, k=k)
    folder = _Folder(project, segmenter, config)
    yield from _prepare(folder, should_stop)
    yield from _train(folder, should_stop)
    _use_embedding_cache(folder)
    yield from _cluster(folder, should_stop)
    yield from _assign(folder, should_stop)
    yield Progress(0, 1, "summarising groups", {"phase": "summarise"})
    result = summarise(folder, result_dir(project) / "partial")
    _publish(folder, result)
    yield Progress(1, 1, "grouped", {"phase": "summarise"})
    return result


class _Embedder:
    """The trained head (or raw statistics) of a finished grouping, to split groups later."""

    def __init__(self, folder: _Folder) -> None:
        self.folder = folder

    def _pixels(self, relpath: str, group_id: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """(embedding [E, h, w], group map uint8 [H, W], item) of one image."""
        from training.grouping.store import load_group_map

        index = self.folder.relpaths.index(relpath)
        groups = load_group_map(self.folder.project, relpath)
        return _embed(self.folder, index), groups, self.folder.load(index)

    def split(self, relpaths: list[str], group_id: int, new_id: int) -> dict[str, np.ndarray]:
        """2-means over the group's pixels; rewrites the maps; returns them by relpath."""
        import cv2

        from training.grouping.kmeans import kmeans_plus_plus, refine_on_sample

        rng = np.random.default_rng(self.folder.config.seed)
        reservoir = Reservoir(20000, rng)
        for relpath in relpaths:
            embedding, groups, _ = self._pixels(relpath, group_id)
            inside = resize_nearest(groups, embedding.shape[1:]) == group_id
            reservoir.add(_sample_pixels(embedding[:, inside][:, :, None], 512, rng))
        sample = reservoir.sample()
        if len(sample) < 2:
            raise GroupingError("this group is too small to split")
        centres = refine_on_sample(kmeans_plus_plus(sample, 2, rng), sample)
        changed = {}
        for relpath in relpaths:
            embedding, groups, item = self._pixels(relpath, group_id)
            flat = embedding.reshape(embedding.shape[0], -1).T
            gap = ((flat - centres[1]) ** 2).sum(1) - ((flat - centres[0]) ** 2).sum(1)
            height, width = item.features.original_size
            gap = cv2.resize(gap.reshape(embedding.shape[1:]).astype(np.float32), (width, height))
            groups[(groups == group_id) & (gap > 0)] = new_id
            write_map(map_path(result_dir(self.folder.project), relpath), groups)
            changed[relpath] = groups
        return changed


def reload_embedder(project: Any, segmenter: Any, result: GroupingResult) -> _Embedder:
    """An embedder for ``result`` (its cache and head must still be in the sidecar)."""
    from training.grouping.fit import folder_statistics

    settings = dict(result.settings)
    folder = _Folder(project, segmenter, GroupConfig(**settings))
    folder.relpaths = list(result.images)
    if folder.config.steps == 0:
        sample = [folder.load(i) for i in range(min(len(folder.relpaths), 32))]
        folder.head, folder.stats = None, folder_statistics(sample)
        return _Embedder(folder)
    fingerprint = folder.config.head_fingerprint(folder.relpaths, folder.clip)
    folder.head, folder.stats = _load_head(project, fingerprint), None
    if folder.head is None:
        raise GroupingError("the trained grouping head is gone; group the folder again")
    return _Embedder(folder)
