"""MCIBI in a labelling product: a per-project memory of what each class looks like *here*.

Seed paper 003 (MCIBI) keeps a feature memory ``M`` (K classes x D channels) that is updated, with
no backprop, from the pixels labelled with each class, and uses it as data-set-level context for
every pixel. Here the memory holds, per project class id, a vector in the engine's dense feature
space (L2-normalised CLIP patch features), updated whenever human labels are saved:

- first sight of a class: the mean feature of its labelled pixels;
- later: the paper's similarity-weighted aggregate (pixels unlike the memory weigh more,
  weight ``1 - cos``) blended in by momentum ``r_t = base * (t + 1) ** -power`` where ``t`` is the
  class's update count (the paper decays ``base * (1 - it / T) ** power`` over a fixed number of
  iterations; a project has none, so the decay runs per class and never reaches zero).

Proposals (:class:`MemoryAdapter`, a ``LogitAdapter`` wrapping the zero-shot logits or a trained
version): per pixel, class probabilities ``W`` weight the memory into a data-set context ``C``,
refined by its similarity to the pixel (``rho = relu(cos(f, C))``) and fused with the pixel's own
feature (``f' = f + rho C``). Every class with memory is then scored against both its text
(the incoming logits) and its memory (``cos(f', m_k)``, logit scale included), mixed with weight
``beta_k = n_k / (n_k + prior)`` on the memory (``n_k``: labelled images), so the labels win over
the text as soon as a class has some. Novel classes keep their text score alone. Cosines with the
memory are taken after subtracting the data set's mean image feature: image-image cosines in CLIP
share a large common component (the "modality gap") that would otherwise make every pixel look
like every remembered class. The centre is the mean of the remembered classes' vectors and of the
data set's mean image feature (so that one remembered class alone still has a direction).
The logits then share one temperature fitted on the labels learned (confidence = the share of
pixels right, not 100 % after one image; argmax unchanged: :mod:`annotator.engine.memory_calibration`).

Storage: ``<sidecar>/memory/memory.npz`` (one atomic file), tagged with the model it was built
with (:func:`memory_key`); a memory built with another backbone, head or working resolution is
never used (``ClassMemory.load`` returns an empty one whose ``stale_key`` says why).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotator.wording import plural

#: Folder under the project's sidecar, and the file in it.
MEMORY_FOLDER = "memory"
MEMORY_FILE = "memory.npz"
#: Project setting: class ids whose memory the user switched off (the class panel's toggle).
DISABLED_SETTING = "memory.disabled"
_FORMAT = 1
_MAX_COUNTED_PIXELS = 4_000_000


@dataclass(frozen=True)
class MemorySettings:
    """``base``/``power``: momentum ``base * (t + 1) ** -power`` (the paper's 0.9 / 0.9);
    ``prior``: memory weight ``n / (n + prior)`` after ``n`` labelled images."""

    base: float = 0.9
    power: float = 0.9
    prior: float = 0.25


def momentum(updates: int, settings: MemorySettings = MemorySettings()) -> float:
    """Weight of a new observation for a class updated ``updates`` (>= 1) times before."""
    return settings.base * float(updates + 1) ** -settings.power


def memory_key(segmenter: Any) -> str:
    """What a memory's features depend on: backbone weights, head and working resolution."""
    c = segmenter.config
    backbone = segmenter.backbone.key if segmenter.backbone is not None else "no-weights"
    return f"{backbone}|{c.head}|{c.short_side}|{c.max_long_side}|{c.window}|{c.stride}"


def labels_digest(labels: np.ndarray) -> str:
    """A digest of a label map's shape and pixels (unchanged labels are not learned twice)."""
    digest = hashlib.blake2b(str(labels.shape).encode(), digest_size=12)
    digest.update(memoryview(np.ascontiguousarray(labels)).cast("B"))
    return digest.hexdigest()


def patch_class_counts(
    labels: np.ndarray, layout: Any, unlabeled: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled pixels per class and patch: ``(class ids [K] int64, counts [K, gh * gw] float32)``.

    ``labels``: ``[H, W]`` class ids at the original size; ``layout``: the engine's
    :class:`~annotator.engine.features.Layout` of that image (original pixel ``(y, x)`` lies in
    working pixel ``((y + 0.5) * h / H, (x + 0.5) * w / W)``, which lies in patch ``// patch``).
    """
    cells = layout.grid[0] * layout.grid[1]
    # Beyond ~4 Mpx a regular subsample counts the same proportions (and bounds the cost).
    step = max(1, math.ceil(math.sqrt(labels.size / _MAX_COUNTED_PIXELS)))
    patch = _patch_map(labels.shape, step, layout.working, layout.patch, layout.grid)
    labels = labels[::step, ::step]
    if labels.dtype == np.uint8:  # one histogram of (patch, label) pairs
        table = np.bincount((patch << 8) | labels.ravel(), minlength=cells << 8)
        table = table.reshape(cells, 256).T
        table[unlabeled] = 0
        ids = np.flatnonzero(table.any(axis=1))
        return ids.astype(np.int64), table[ids].astype(np.float32)
    flat = labels.ravel().astype(np.int64)
    histogram = np.bincount(flat, minlength=unlabeled + 1)
    histogram[unlabeled] = 0
    ids = np.flatnonzero(histogram)
    lookup = np.full(len(histogram), len(ids), np.int64)
    lookup[ids] = np.arange(len(ids))
    counts = np.bincount(lookup[flat] * cells + patch, minlength=(len(ids) + 1) * cells)
    return ids.astype(np.int64), counts[: len(ids) * cells].reshape(-1, cells).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _patch_map(
    size: tuple[int, int], step: int, working: tuple[int, int], patch: int, grid: tuple[int, int]
) -> np.ndarray:
    """int32 ``[H' * W']``: the patch (row-major on ``grid``) that each original pixel of the
    ``[::step, ::step]`` subsample falls in."""
    (height, width), (gh, gw) = size, grid
    rows = (np.arange(0, height, step) + 0.5) * (working[0] / height) // patch
    cols = (np.arange(0, width, step) + 0.5) * (working[1] / width) // patch
    rows, cols = np.minimum(rows, gh - 1), np.minimum(cols, gw - 1)
    patch_of = rows.astype(np.int32)[:, None] * gw + cols.astype(np.int32)[None, :]
    patch_of.flags.writeable = False
    return patch_of.ravel()


@dataclass
class ClassMemory:
    """The memory of one project for one model (:func:`memory_key`).

    ``rows``: class id -> float32 ``[D]`` (not normalised); ``images``: class id -> number of
    distinct labelled images it has seen; ``updates``: class id -> momentum steps taken;
    ``centre``: float32 ``[D]`` running mean of the learned images' mean features;
    ``learned``: relpath -> digest of the labels last learned from it; ``image_classes``: relpath
    -> the classes it has taught (so that an image counts once per class); ``scale``: the
    calibrated scale of its cosines (:mod:`annotator.engine.memory_calibration`; None until
    labels of two classes were learned), fitted on ``scale_weight`` labelled pixels.
    """

    key: str
    dim: int | None = None
    rows: dict[int, np.ndarray] = field(default_factory=dict)
    images: dict[int, int] = field(default_factory=dict)
    updates: dict[int, int] = field(default_factory=dict)
    centre: np.ndarray | None = None
    centre_count: int = 0
    learned: dict[str, str] = field(default_factory=dict)
    image_classes: dict[str, list[int]] = field(default_factory=dict)
    settings: MemorySettings = MemorySettings()
    stale_key: str | None = None  # set by load() when the stored memory was for another model
    scale: float | None = None
    scale_weight: float = 0.0

    def counts(self) -> dict[int, int]:
        """Class id -> labelled images remembered."""
        return dict(self.images)

    def update(
        self, features: np.ndarray, labels: np.ndarray, layout: Any, unlabeled: int,
        relpath: str | None = None, logit_scale: float | None = None,
    ) -> list[int]:  # fmt: skip
        """Learn from one image: ``features`` float32 ``[D, gh, gw]`` (the engine's dense
        features of ``layout``), ``labels`` ``[H, W]`` class ids (``unlabeled`` = none).
        With ``logit_scale`` (the engine's) the image also calibrates :attr:`scale`.
        Returns the class ids updated; an image whose labels were already learned is skipped."""
        digest = labels_digest(labels)
        if relpath is not None and self.learned.get(relpath) == digest:
            return []
        self._check_dim(features.shape[0])
        flat = np.asarray(features, dtype=np.float32).reshape(features.shape[0], -1)  # [D, P]
        ids, counts = patch_class_counts(labels, layout, unlabeled)
        fitted = self._fit_scale(features, labels, layout, unlabeled, logit_scale)  # unseen
        before = set(self.image_classes.get(relpath, ())) if relpath is not None else set()
        for class_id, count in zip(ids.tolist(), counts, strict=True):
            self._learn_class(class_id, flat, count, new_image=class_id not in before)
        if relpath is None or relpath not in self.learned:
            self._learn_centre(flat)
        if fitted is None:  # e.g. the first image: nothing learned before to test
            fitted = self._fit_scale(features, labels, layout, unlabeled, logit_scale)
        if fitted is not None:
            self._add_scale(fitted, float(counts.sum()))
        if relpath is not None:
            self.learned[relpath] = digest
            self.image_classes[relpath] = sorted(before | set(ids.tolist()))
        return ids.tolist()

    def _fit_scale(
        self, features: np.ndarray, labels: np.ndarray, layout: Any, unlabeled: int,
        logit_scale: float | None,
    ) -> float | None:  # fmt: skip
        if logit_scale is None:
            return None
        from annotator.engine.memory_calibration import image_scale

        return image_scale(self, features, labels, layout, unlabeled, logit_scale)

    def _add_scale(self, scale: float, weight: float) -> None:
        """Average ``log(scale)`` into :attr:`scale`, weighted by labelled pixels."""
        total = self.scale_weight + weight
        old = math.log(self.scale) * self.scale_weight if self.scale else 0.0
        self.scale = math.exp((old + math.log(scale) * weight) / total)
        self.scale_weight = total

    def _check_dim(self, dim: int) -> None:
        if self.dim is None:
            self.dim = dim
        elif self.dim != dim:
            raise ValueError(f"features have {dim} channels; this memory holds {self.dim}")

    def _learn_class(
        self, class_id: int, flat: np.ndarray, count: np.ndarray, new_image: bool
    ) -> None:
        total = float(count.sum())
        old = self.rows.get(class_id)
        if old is None:
            self.rows[class_id] = (flat @ count) / total
            self.updates[class_id] = 1
        else:
            similarity = old @ flat / max(float(np.linalg.norm(old)), 1e-12)
            weight = count * np.clip(1.0 - similarity, 0.0, None)
            weight = weight if weight.sum() > 1e-6 * total else count
            observed = (flat @ weight) / float(weight.sum())
            rate = momentum(self.updates[class_id], self.settings)
            self.rows[class_id] = ((1.0 - rate) * old + rate * observed).astype(np.float32)
            self.updates[class_id] += 1
        self.images[class_id] = self.images.get(class_id, 0) + int(new_image)

    def _learn_centre(self, flat: np.ndarray) -> None:
        mean = flat.mean(axis=1)
        self.centre_count += 1
        if self.centre is None:
            self.centre = mean.astype(np.float32)
        else:
            self.centre = (self.centre + (mean - self.centre) / self.centre_count).astype(
                np.float32
            )

    # -- persistence -------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/memory.npz`` atomically (a crash leaves the previous file)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.rows)
        dim = self.dim or 0
        meta = {"format": _FORMAT, "key": self.key, "dim": self.dim, "learned": self.learned,
                "image_classes": self.image_classes, "centre_count": self.centre_count,
                "scale": self.scale, "scale_weight": self.scale_weight}  # fmt: skip
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "ids": np.asarray(ids, np.int64),
            "rows": np.asarray([self.rows[i] for i in ids], np.float32).reshape(len(ids), dim),
            "images": np.asarray([self.images[i] for i in ids], np.int64),
            "updates": np.asarray([self.updates[i] for i in ids], np.int64),
            "centre": np.zeros(dim, np.float32) if self.centre is None else self.centre,
        }
        target = folder / MEMORY_FILE
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".memory-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **arrays)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(
        cls, folder: str | Path, key: str, settings: MemorySettings = MemorySettings()
    ) -> ClassMemory:
        """The memory stored in ``folder`` for ``key``; an empty one when there is none, when it
        was built for another model (``stale_key`` then names it) or is unreadable."""
        path = Path(folder) / MEMORY_FILE
        if not path.exists():
            return cls(key, settings=settings)
        try:
            stored = read_memory_file(path, settings)
        except (OSError, ValueError, KeyError) as error:
            return cls(key, settings=settings, stale_key=f"unreadable ({error})")
        if stored.key != key:
            return cls(key, settings=settings, stale_key=stored.key)
        return stored


def read_memory_file(path: str | Path, settings: MemorySettings = MemorySettings()) -> ClassMemory:
    """The memory in ``path`` whatever model it was built for (``annotator memory`` prints it)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        ids = data["ids"].tolist()
        memory = ClassMemory(meta["key"], dim=meta["dim"], settings=settings)
        memory.rows = {i: row.astype(np.float32) for i, row in zip(ids, data["rows"], strict=True)}
        memory.images = dict(zip(ids, data["images"].tolist(), strict=True))
        memory.updates = dict(zip(ids, data["updates"].tolist(), strict=True))
        memory.centre_count = int(meta["centre_count"])
        memory.centre = data["centre"].astype(np.float32) if memory.centre_count else None
        memory.learned = dict(meta["learned"])
        memory.image_classes = {k: list(v) for k, v in meta.get("image_classes", {}).items()}
        memory.scale = meta.get("scale")  # older files: None (uncalibrated) until labels are saved
        memory.scale_weight = float(meta.get("scale_weight", 0.0))
    return memory


# -- proposals ---------------------------------------------------------------------------------


def class_key(name: str) -> str:
    """Matching key of a class string: its first name, stripped and lower-cased."""
    return name.split(";")[0].strip().lower()


class MemoryAdapter:
    """A ``LogitAdapter``: the incoming logits (zero-shot, or ``inner``'s) with the memory mixed
    into the classes it knows. ``class_names``: project class id -> its prompt, to match the
    view's class strings; ``disabled``: class ids to leave to the text; ``logit_scale`` as the
    engine's; ``patch_size``: the engine's (the feature grid covers whole patches)."""

    def __init__(
        self, memory: ClassMemory, class_names: Mapping[int, str], logit_scale: float,
        patch_size: int, inner: Callable | None = None, disabled: Iterable[int] = (),
    ) -> None:  # fmt: skip
        self.memory = memory
        self.class_names = dict(class_names)
        self.logit_scale = logit_scale
        self.patch_size = patch_size
        self.inner = inner
        self.disabled = frozenset(disabled)

    def remembered(self, view_classes: list[str]) -> tuple[list[int], list[int]]:
        """(class ids, positions in ``view_classes``) of the classes the memory can score."""
        position = {class_key(name): i for i, name in reversed(list(enumerate(view_classes)))}
        ids, positions = [], []
        for class_id, name in self.class_names.items():
            usable = class_id in self.memory.rows and class_id not in self.disabled
            if usable and class_key(name) in position:
                ids.append(class_id)
                positions.append(position[class_key(name)])
        return ids, positions

    def __call__(self, view: Any) -> np.ndarray:
        logits = self.inner(view) if self.inner is not None else view.zero_shot_logits
        logits = np.asarray(logits, dtype=np.float32)
        ids, positions = self.remembered(list(view.class_names))
        if view.features is None or not ids or self.memory.centre is None:
            return logits
        rows, weights = self._rows(ids), self._weights(ids)
        centre = np.vstack([rows, self.memory.centre[None]]).mean(axis=0)
        fused = fuse_memory(logits, view.features, rows, positions, weights, centre,
                            self.logit_scale, self.patch_size)  # fmt: skip
        return fused * np.float32(self.temperature(weights))

    def temperature(self, weights: np.ndarray) -> float:
        """The factor on every logit that makes the memory's share (``weights`` ``[S]``, its
        scores times the logit scale) as confident as :attr:`ClassMemory.scale` says: at most 1,
        and the same for every class, so each pixel keeps its class."""
        scale = self.memory.scale
        if scale is None or not len(weights):
            return 1.0
        return min(1.0, scale / (self.logit_scale * max(float(np.mean(weights)), 1e-6)))

    def _rows(self, ids: list[int]) -> np.ndarray:
        return np.stack([self.memory.rows[i] for i in ids]).astype(np.float32)

    def _weights(self, ids: list[int]) -> np.ndarray:
        prior = self.memory.settings.prior
        return np.asarray([self.memory.images[i] / (self.memory.images[i] + prior) for i in ids])


def _unit(x: Any, dim: int) -> Any:
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-6)


def fuse_memory(
    logits: np.ndarray,
    features: np.ndarray,
    rows: np.ndarray,
    positions: list[int],
    weights: np.ndarray,
    centre: np.ndarray,
    logit_scale: float,
    patch_size: int,
) -> np.ndarray:
    """``logits`` float32 ``[C, h, w]`` with rows ``positions`` mixed with memory scores.

    ``features`` float32 ``[D, gh, gw]`` (grid covering the padded image), ``rows`` float32
    ``[S, D]`` the memory of the classes at ``positions``, ``weights`` ``[S]`` the memory's share,
    ``centre`` ``[D]`` the common component subtracted before cosines. Returns a new float32
    ``[C, h, w]`` array.
    """
    import torch

    with torch.inference_mode():
        pixels = torch.from_numpy(np.ascontiguousarray(features, np.float32))
        memory = torch.from_numpy(rows)
        scores = _memory_scores(pixels, memory, torch.from_numpy(centre), logit_scale)
        grid = _upsample(scores * logit_scale, logits.shape[1:], patch_size)
        out = torch.from_numpy(logits.copy())
        for row, (position, beta) in enumerate(zip(positions, weights.tolist(), strict=True)):
            out[position].mul_(1.0 - beta).add_(grid[row], alpha=beta)
        return out.numpy()


def _memory_scores(features: Any, rows: Any, centre: Any, logit_scale: float) -> Any:
    """Cosines ``[S, gh, gw]`` of the context-fused pixel features with the centred memory.

    With ``p`` the centred unit pixel feature and ``m_k`` the centred unit memory rows: ``W``
    (MCIBI's class probabilities of each pixel) = softmax of the cosine classifier ``p . m_k``;
    the data-set context ``c = sum_k W_k m_k`` is gated by ``rho = relu(cos(p, c))`` and fused as
    ``f = p + rho c``; the result is ``cos(f, m_k)``. Everything but one ``[S+1, D] x [D, P]``
    product is computed in the S-dimensional space of the remembered classes (``c . m_j`` is
    ``(G W)_j`` with ``G`` the memory's Gram matrix), which keeps it a fraction of a millisecond.
    """
    import torch

    dim, gh, gw = features.shape
    flat = features.reshape(dim, -1)  # [D, P]
    memory = _unit(rows - centre, 1)  # [S, D]
    projected = torch.cat([memory, centre[None]]) @ flat  # [S + 1, P]
    squares = torch.linalg.vector_norm(flat, dim=0).square_()
    length = (squares - 2 * projected[-1] + centre.dot(centre)).clamp_min(1e-12).sqrt_()
    cos = (projected[:-1] - (memory @ centre)[:, None]).div_(length)  # p . m_k, [S, P]
    weight = (cos * logit_scale).softmax(dim=0)  # W
    spread = (memory @ memory.T) @ weight  # c . m_j, [S, P]
    along = (weight * cos).sum(dim=0)  # p . c
    context = (weight * spread).sum(dim=0).clamp_min(1e-12)  # |c|^2
    rho = (along / context.sqrt()).clamp_min(0.0)
    norm = (1.0 + 2.0 * rho * along + rho.square() * context).clamp_min(1e-12).sqrt_()
    return (cos + rho * spread).div_(norm).reshape(len(rows), gh, gw)


def _upsample(grid: Any, size: tuple[int, int], patch_size: int) -> Any:
    """``grid`` ``[S, gh, gw]`` -> ``[S, h, w]`` as the engine upsamples (padded, then cropped)."""
    import torch.nn.functional as F

    gh, gw = grid.shape[1:]
    padded = (gh * patch_size, gw * patch_size)
    if not all(0 <= p - s < patch_size for p, s in zip(padded, size, strict=True)):
        padded = size
    up = F.interpolate(grid[None], size=padded, mode="bilinear", align_corners=False)[0]
    return up[:, : size[0], : size[1]]


# -- a project's memory (duck-typed ``annotator.project.Project``: the core stays layered) -------


def memory_folder(project: Any) -> Path:
    """``<sidecar>/memory``: where a project keeps its class memory."""
    return Path(project.sidecar) / MEMORY_FOLDER


def load_project_memory(project: Any, segmenter: Any) -> ClassMemory:
    """The project's memory for ``segmenter``'s model (empty if none or built for another)."""
    return ClassMemory.load(memory_folder(project), memory_key(segmenter))


def disabled_classes(project: Any) -> set[int]:
    """Class ids whose memory the user switched off (project setting ``memory.disabled``)."""
    return {int(i) for i in project.get_setting(DISABLED_SETTING, []) or []}


def set_memory_enabled(project: Any, class_id: int, enabled: bool) -> None:
    """Switch the memory of one class on or off for proposals (it keeps learning)."""
    disabled = disabled_classes(project) - {class_id} | (set() if enabled else {class_id})
    project.set_setting(DISABLED_SETTING, sorted(disabled))


def create_memory_adapter(
    project: Any, segmenter: Any, memory: ClassMemory, inner: Callable | None = None
) -> MemoryAdapter:
    """A :class:`MemoryAdapter` over ``inner`` (a trained version, or None = zero-shot) with the
    project's current class names and switched-off classes."""
    names = {info.id: info.prompt for info in project.list_classes()}
    return MemoryAdapter(memory, names, segmenter.config.logit_scale, segmenter.patch_size,
                         inner=inner, disabled=disabled_classes(project))  # fmt: skip


def learn_labels(
    memory: ClassMemory, segmenter: Any, image: np.ndarray, labels: np.ndarray,
    unlabeled: int, relpath: str | None = None,
) -> list[int]:  # fmt: skip
    """Update ``memory`` from ``image`` (``[H, W, 3]`` uint8) and its human ``labels``
    (``[H, W]`` class ids): the engine's features are cached, so this is cheap after a proposal."""
    from annotator.engine.features import plan_layout

    if relpath is not None and memory.learned.get(relpath) == labels_digest(labels):
        return []
    c = segmenter.config
    layout = plan_layout(labels.shape, c.short_side, c.max_long_side, segmenter.patch_size)
    features = segmenter.image_features(image)
    return memory.update(features, labels, layout, unlabeled, relpath, c.logit_scale)


def learn_project_job(
    project: Any, segmenter: Any, memory: ClassMemory, should_stop: Callable[[], bool] = bool,
    save_every: int = 25,
) -> Any:  # fmt: skip
    """Batch job: learn every human-labelled image whose labels ``memory`` has not learned yet,
    saving it every ``save_every`` images learned and at the end (a stopped job keeps what it
    learned; running it again continues); yields Progress, returns the number learned."""
    from annotator.errors import ImageReadError, JobCancelled
    from annotator.progress import Progress

    records = project.list_images(has_labels=True)
    learned = 0
    for done, record in enumerate(records):
        if should_stop():
            memory.save(memory_folder(project))
            raise JobCancelled(
                f"Stopped after {done} of {plural(len(records), 'image')}; run it again to go on."
            )
        labels = project.load_labels(record.relpath)
        if labels is not None and memory.learned.get(record.relpath) != labels_digest(labels):
            try:
                image = project.load_image(record.relpath)
            except ImageReadError:
                continue
            learn_labels(memory, segmenter, image, labels, project.unlabeled_value, record.relpath)
            learned += 1
            if learned % save_every == 0:
                memory.save(memory_folder(project))
        yield Progress(done + 1, len(records), record.relpath)
    memory.save(memory_folder(project))
    return learned
