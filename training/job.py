"""The retraining job: features, fit on human labels, self-training rounds, scores, versions."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annotator.errors import JobCancelled
from annotator.metrics import MetricsReport
from annotator.progress import Progress, ShouldStop, never_stop
from training.adapter import TrainedAdapter
from training.cagnet.step import GenerativeStep
from training.checkpoint import (
    RoundCheckpoint,
    TrainCheckpoint,
    cached_pass,
    run_key,
    saved_version,
)
from training.config import TrainConfig
from training.dataset import Split, class_prompts, load_view, split_project
from training.errors import ModelVersionError, NotEnoughLabelsError
from training.evaluate import HeldOutImage, positions_lut, score_images
from training.filters import FilterCache
from training.fit import SampleSet, fit_head, resolve_device
from training.fusion import softmax
from training.head import HeadSpec, PixelHead
from training.models import activate_version, load_active_adapter, version_store
from training.parallel import SINGLE, Collective, image_rng
from training.report import headline, report_json
from training.samples import samples_from_targets, select_pseudo_labels
from training.versions import ModelVersion
from training.views import resize_labels


@dataclass
class TrainResult:
    """Outcome of :func:`train`: ``version`` (the best new version) and ``versions`` (one per
    round), metrics of the previously active model (``metrics_before``; zero-shot when
    ``previous_id`` is None) and of ``version`` (``metrics_after``) on the same held-out images,
    every reported loss, the split used, the number of pseudo-labelled pixels per round,
    ``activated`` (False: ``version`` scored lower than the active model, which stays active),
    the ``seen``/``unseen`` class names (seen = human-labelled training pixels) and whether the
    generative step ran."""

    version: ModelVersion
    versions: list[ModelVersion]
    metrics_before: MetricsReport
    metrics_after: MetricsReport
    losses: list[float] = field(default_factory=list)
    split: Split | None = None
    pseudo_pixels: list[int] = field(default_factory=list)
    activated: bool = True
    previous_id: str | None = None
    seen: list[str] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)
    generative: bool = False

    @property
    def active_id(self) -> str | None:
        """The version proposals use after the job (None: zero-shot only)."""
        return self.version.id if self.activated else self.previous_id

    @property
    def regression_note(self) -> str | None:
        """When the new version scores lower on the held-out images than the active model: what
        stays active and how to switch anyway; else None."""
        label, after = headline(self.metrics_after)
        _, before = headline(self.metrics_before)
        if before is None or after is None or after >= before:
            return None
        previous = self.previous_id or "zero-shot only"
        return (
            f"{self.version.id} scores lower on the held-out images than the active model "
            f"{previous} ({label} {100 * after:.1f} vs {100 * before:.1f}), so {previous} stays "
            f"active; select {self.version.id} and click 'Use this version' (or run "
            f"'annotator train FOLDER --use {self.version.id}') if you prefer it."
        )


@dataclass
class _Run:
    """What one training run shares between its steps."""

    project: Any
    segmenter: Any
    config: TrainConfig
    should_stop: ShouldStop
    class_ids: list[int]
    prompts: list[str]
    names: list[str]
    filter_cache: FilterCache
    generative: GenerativeStep | None = None
    collective: Collective = SINGLE
    checkpoint: TrainCheckpoint | None = None

    def check(self) -> None:
        if self.should_stop():
            raise JobCancelled("Retraining was cancelled; the previous model version stays active.")

    def view(self, relpath: str) -> Any:
        return load_view(self.project, self.segmenter, relpath, self.prompts, self.config)

    @property
    def use_clip(self) -> bool:
        return self.config.use_clip_features and self.segmenter is not None


def _human_targets(run: _Run, relpath: str, size: tuple[int, int]) -> np.ndarray | None:
    """Human labels of ``relpath`` as class ids int64 [h, w] at working size (-1 = none); None
    when the label file turned out unreadable (the store quarantines it)."""
    labels = run.project.load_labels(relpath)
    if labels is None:
        return None
    lut = positions_lut(run.project, run.class_ids)
    ids = np.asarray(run.class_ids + [-1], dtype=np.int64)
    return ids[lut[resize_labels(labels, size)]]


#: ``image_rng`` stream of CaGNet's maps (0: human samples; 1 + round: pseudo-labels of a round).
_MAPS_STREAM = 7919


def _human_samples(run: _Run, position: int, relpath: str) -> tuple[SampleSet, Any] | None:
    """Samples (and CaGNet's maps, or None) of training image ``position``; None when its
    label file turned out unreadable. Drawn from per-image generators: any process can do it."""
    view = run.view(relpath)
    filters = run.filter_cache.get(view.image)
    targets = _human_targets(run, relpath, view.size)
    if targets is None:
        return None
    maps = None
    if run.generative is not None:
        maps = run.generative.maps_of(
            view, filters, targets, image_rng(run.config.seed, _MAPS_STREAM, position)
        )
    rng = image_rng(run.config.seed, 0, position)
    per_class = run.config.samples_per_class
    return samples_from_targets(view, filters, targets, per_class, 1.0, rng, run.use_clip), maps


def _collect_human(run: _Run, split: Split) -> Generator[Progress, None, SampleSet]:
    work = lambda position, relpath: _human_samples(run, position, relpath)  # noqa: E731
    results = yield from cached_pass(
        run.checkpoint, run.collective, "human",
        (split.train, work, "features of", {"phase": "features"}, run.check),
    )  # fmt: skip
    parts = []
    for result in filter(None, results):
        if run.generative is not None:
            run.generative.data.add(result[1])
        parts.append(result[0])
    if not parts or not len(samples := SampleSet.concatenate(parts)):
        raise NotEnoughLabelsError(
            "The labelled images hold no labelled pixels of the project's classes: paint some "
            "labels, mark the images reviewed, and retrain."
        )
    return samples


def _collect_holdout(run: _Run, split: Split) -> Generator[Progress, None, list[HeldOutImage]]:
    """This process's share of the held-out images (scores sum over processes)."""
    lut = positions_lut(run.project, run.class_ids)
    items = []
    mine = [split.holdout[i] for i in run.collective.shard(len(split.holdout))]
    for done, relpath in enumerate(mine, start=1):
        run.check()
        labels = run.project.load_labels(relpath)
        if labels is None:
            continue
        truth = lut[labels]
        items.append(HeldOutImage(relpath, run.view(relpath), truth))
        yield Progress(done, len(mine), f"held-out {relpath}", {"phase": "holdout"})
    return items


def _round_head(
    run: _Run, samples: SampleSet, round_index: int, unseen_ids: list[int], losses: list[float]
) -> Generator[Progress, None, PixelHead]:
    """The head of one round: fitted on ``samples``, then (CaGNet) taught the unseen classes."""
    head = yield from _collect_losses(_head_for(run, samples, round_index), losses)
    if run.generative is not None:
        job = run.generative.fit(
            head, samples, unseen_ids, round_index, run.should_stop,
            resolve_device(run.config.device),
        )  # fmt: skip
        head = run.collective.same_everywhere((yield from _collect_losses(job, losses)))
    return head


def _saved_head(run: _Run, version_id: str) -> PixelHead:
    """The head of an already saved version, as rank 0 reads it, on every process."""
    return run.collective.broadcast(lambda: version_store(run.project).load_head(version_id))


def _saved(run: _Run, version_id: str) -> ModelVersion | None:
    return version_store(run.project).get(version_id) if run.collective.is_main else None


def _head_for(
    run: _Run, samples: SampleSet, round_index: int
) -> Generator[Progress, None, PixelHead]:
    """Fit a fresh head on ``samples`` (labels = class ids) over the classes they contain."""
    learned = tuple(int(c) for c in np.unique(samples.labels))
    to_index = np.full(max(learned) + 1, -1, np.int64)
    to_index[list(learned)] = np.arange(len(learned))
    indexed = SampleSet(samples.filters, samples.clip, to_index[samples.labels], samples.weights)
    clip_channels = 0 if indexed.clip is None else indexed.clip.shape[1]
    spec = HeadSpec(indexed.filters.shape[1], clip_channels, run.config.hidden, learned)
    data = {"phase": "fit", "round": round_index + 1}
    device = resolve_device(run.config.device)
    settings = run.config.fit_settings(round_index)
    checkpoint = None
    if run.checkpoint is not None:
        checkpoint = RoundCheckpoint(run.checkpoint, round_index, run.collective)
    job = fit_head(
        spec, indexed, settings, run.should_stop, device, data, run.collective, checkpoint
    )
    return (yield from job)


def _adapter(run: _Run, head: PixelHead, seen: set[int]) -> TrainedAdapter:
    names = {cid: run.names[i] for i, cid in enumerate(run.class_ids)}
    learned = {cid: names[cid] for cid in head.spec.class_ids if cid in names}
    config = run.config
    return TrainedAdapter(
        head, learned, config.filter_spec, config.fusion, None, run.filter_cache,
        _patch_size(run), seen,
    )  # fmt: skip


def _patch_size(run: _Run) -> int | None:
    return getattr(run.segmenter, "patch_size", None) if run.segmenter is not None else None


def _pseudo_samples(
    run: _Run, split: Split, adapter: TrainedAdapter, round_index: int, only: set[int] | None
) -> Generator[Progress, None, SampleSet]:
    """Confident predictions of ``adapter`` on unlabelled images, as weighted samples; only of
    the class ids in ``only`` when given (CaGNet's self-training: the unseen classes)."""
    config = run.config
    relpaths = split.unlabelled[: config.pseudo_max_images]
    ids = np.asarray(run.class_ids, dtype=np.int64)

    def work(position: int, relpath: str) -> SampleSet:
        view = run.view(relpath)
        probabilities = softmax(adapter(view))
        floor = (
            config.pseudo_min_confidence if only is None else config.pseudo_unseen_min_confidence
        )
        positions, _ = select_pseudo_labels(probabilities, config.pseudo_top_fraction, floor)
        targets = np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)
        if only is not None:
            targets = np.where(np.isin(targets, list(only)), targets, -1)
        filters = run.filter_cache.get(view.image)
        rng = image_rng(config.seed, 1 + round_index, position)
        return samples_from_targets(
            view, filters, targets, config.samples_per_class, config.pseudo_weight, rng,
            run.use_clip,
        )  # fmt: skip

    data = {"phase": "pseudo-labels", "round": round_index + 1}
    parts = yield from cached_pass(
        run.checkpoint, run.collective, f"pseudo-{round_index}",
        (relpaths, work, "pseudo-labels of", data, run.check),
    )  # fmt: skip
    return SampleSet.concatenate(parts) if parts else _empty_like()


def _empty_like() -> SampleSet:
    return SampleSet(
        np.zeros((0, 0), np.float32), None, np.zeros(0, np.int64), np.zeros(0, np.float32)
    )


def _settings(run: _Run, split: Split) -> dict[str, Any]:
    engine = getattr(run.segmenter, "config", None)
    return {
        "train": run.config.to_json(),
        "engine": _engine_json(engine),
        "train_images": list(split.train),
        "holdout_images": list(split.holdout),
    }


def _engine_json(engine: Any) -> dict[str, Any] | None:
    if engine is None:
        return None
    from dataclasses import asdict, is_dataclass

    return asdict(engine) if is_dataclass(engine) else {"repr": repr(engine)}


def _start(
    project: Any, segmenter: Any, config: TrainConfig, should_stop: ShouldStop,
    collective: Collective,
) -> _Run:  # fmt: skip
    class_ids, prompts = class_prompts(project)
    names = {info.id: info.name for info in project.list_classes()}
    generative = GenerativeStep.create(
        config.generative, segmenter, class_ids, prompts, config.cagnet, config.seed
    )
    return _Run(
        project, segmenter, config, should_stop, class_ids, prompts,
        [names[cid] for cid in class_ids], FilterCache(config.filter_spec, 1024 * 2**20),
        generative, collective,
    )  # fmt: skip


def _unseen(run: _Run, learned: set[int]) -> list[str]:
    return [run.names[i] for i, cid in enumerate(run.class_ids) if cid not in learned]


def train(
    project: Any,
    segmenter: Any = None,
    config: TrainConfig | None = None,
    should_stop: ShouldStop = never_stop,
    collective: Collective = SINGLE,
    checkpoint: TrainCheckpoint | None = None,
) -> Generator[Progress, None, TrainResult | None]:
    """Retrain the project's head; a batch job (see :mod:`annotator.progress`).

    Round 1 fits on the human labels of imported/edited/reviewed images (minus the held-out
    ones); every further round adds confident pseudo-labels of unlabelled images (never stored
    as labels). With the generative step (``config.generative``), each round's head then learns
    the classes without human labels from CaGNet's generated features, and self-training
    pseudo-labels only those classes. Seen classes are those with human training labels, always.
    Each round is saved as a version with its held-out metrics; the best one is activated unless
    it scores lower than the active model (then that one stays active: see ``TrainResult``).
    ``segmenter`` (the engine) may be None: filter features only. Progress ``data`` is a dict
    with ``phase`` ("features", "holdout", "evaluate", "fit", "generative", "pseudo-labels")
    and, while fitting, ``round``, ``step`` and ``loss``. Cancelling (``should_stop``) raises
    :class:`JobCancelled` and leaves the active version unchanged.

    With a ``collective`` of several processes (``annotator.cluster.distributed``), every
    process runs this with the same arguments (only rank 0's ``project`` open for writing):
    image encoding and scoring are shared out, the head is fitted with DDP, rank 0 alone saves
    and activates versions and returns the result; the other processes return None. A
    ``checkpoint`` lets a restarted run resume (see :mod:`training.checkpoint`).
    """
    config = config or TrainConfig()
    run = _start(project, segmenter, config, should_stop, collective)
    run.checkpoint = checkpoint
    split = collective.broadcast(lambda: split_project(project, config))
    if checkpoint is not None:
        checkpoint.start(run_key({**_settings(run, split), "classes": run.prompts,
                                  "unlabelled": list(split.unlabelled)}))  # fmt: skip
    human = yield from _collect_human(run, split)
    holdout = yield from _collect_holdout(run, split)
    seen = {int(c) for c in np.unique(human.labels)}
    unseen_ids = [c for c in run.class_ids if c not in seen]
    if not unseen_ids:
        run.generative = None  # nothing to generate: every class has human labels
    previous_id = version_store(project).active_id()
    before = _score_previous(project, holdout, run.names, _unseen(run, seen), collective)
    yield Progress(0, config.rounds, "scored the active version", {"phase": "evaluate", "round": 0})
    samples, versions, scores, losses, pseudo_counts = human, [], [], [], []
    for round_index in range(config.rounds):
        saved_id = saved_version(run.checkpoint, collective, round_index)
        if saved_id is None:
            head = yield from _round_head(run, samples, round_index, unseen_ids, losses)
        else:  # a restart: this round's version was saved before the failure
            head = _saved_head(run, saved_id)
        adapter = _adapter(run, head, seen)
        after = score_images(holdout, adapter, run.names, _unseen(run, seen), collective)
        data = {"phase": "evaluate", "round": round_index + 1, "miou": after.miou}
        yield Progress(round_index + 1, config.rounds, f"round {round_index + 1} scored", data)
        versions.append(
            _save(run, split, head, (before, after), round_index, pseudo_counts, seen, previous_id)
            if saved_id is None
            else _saved(run, saved_id)
        )
        scores.append(after)
        if round_index + 1 < config.rounds:
            only = set(unseen_ids) if run.generative is not None else None
            pseudo = yield from _pseudo_samples(run, split, adapter, round_index + 1, only)
            pseudo_counts.append(len(pseudo))
            samples = SampleSet.concatenate([human, pseudo])
    run.check()
    if not collective.is_main:
        return None
    best = _best_round(scores)
    if getattr(getattr(segmenter, "config", None), "proposer", "dense") == "zegformer":
        from training.zegformer import train_for_version  # ZegFormer's segment decoder

        yield from train_for_version(
            project, segmenter, split, versions[best].id, config, should_stop
        )
    result = TrainResult(
        versions[best], versions, before, scores[best], losses, split, pseudo_counts,
        previous_id=previous_id, seen=[n for n in run.names if n not in _unseen(run, seen)],
        unseen=_unseen(run, seen), generative=run.generative is not None,
    )  # fmt: skip
    result.activated = result.regression_note is None
    if result.activated:
        activate_version(project, result.version.id)
    store = version_store(project)
    result.version = store.get(result.version.id)
    result.versions = [store.get(v.id) for v in versions]
    return result


def _best_round(scores: list[MetricsReport]) -> int:
    """Index of the best-scoring round (headline figure; ties and unscored: the later round)."""
    values = [headline(report)[1] for report in scores]
    if any(v is None for v in values):
        return len(scores) - 1
    return max(range(len(values)), key=lambda i: (values[i], i))


def _score_previous(
    project: Any, holdout: list[HeldOutImage], names: list[str], unseen: list[str],
    collective: Collective = SINGLE,
) -> MetricsReport:  # fmt: skip
    """Scores of the active version; of zero-shot when there is none, or when it no longer fits
    the loaded engine (e.g. trained with CLIP features that are now missing)."""
    try:
        return score_images(holdout, load_active_adapter(project), names, unseen, collective)
    except ModelVersionError:  # the same on every process: their views come from one engine
        return score_images(holdout, None, names, unseen, collective)


def _collect_losses(
    job: Generator[Progress, None, PixelHead], losses: list[float]
) -> Generator[Progress, None, PixelHead]:
    """Pass ``job``'s progress through, recording every reported loss in ``losses``."""
    while True:
        try:
            step = next(job)
        except StopIteration as done:
            return done.value
        if isinstance(step.data, dict) and "loss" in step.data:
            losses.append(step.data["loss"])
        yield step


def _save(
    run: _Run,
    split: Split,
    head: PixelHead,
    scores: tuple[MetricsReport, MetricsReport],
    round_index: int,
    pseudo_counts: list[int],
    seen: set[int],
    previous_id: str | None,
) -> ModelVersion | None:
    """Save one round's version (rank 0 only: the other processes return None)."""
    if not run.collective.is_main:
        return None
    names = {cid: run.names[i] for i, cid in enumerate(run.class_ids)}
    extra = {
        "class_ids": list(head.spec.class_ids),
        "seen_class_ids": sorted(c for c in head.spec.class_ids if c in seen),
        "generative": run.generative is not None,
        "compared_with": previous_id,
        "filter_sigmas": list(run.config.filter_sigmas),
        "fusion": {"lam": run.config.fusion_lambda, "gamma": run.config.calibration_gamma},
        "round": round_index + 1,
        "patch_size": _patch_size(run),
        "pseudo_pixels": list(pseudo_counts),
    }
    metrics = {"before": report_json(scores[0]), "after": report_json(scores[1])}
    version = version_store(run.project).save(head, names, metrics, _settings(run, split), extra)
    if run.checkpoint is not None:
        run.checkpoint.save_version(round_index, version.id)
    return version
