"""Scoring a model (zero-shot or a trained version) on held-out human labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotator.metrics import ConfusionMatrix, MetricsReport, compute_metrics, evaluate_project
from annotator.progress import Job, ShouldStop, never_stop, run_job
from training.config import TrainConfig
from training.dataset import choose_holdout, class_prompts, load_view
from training.errors import NotEnoughLabelsError
from training.parallel import SINGLE, Collective
from training.views import PixelView

#: ``adapter(view) -> float32 [C, h, w]`` logits, or None for the engine's zero-shot logits.
Adapter = Callable[[Any], np.ndarray] | None


@dataclass
class HeldOutImage:
    """A held-out image: its working ``view`` and ``truth`` int64 [H, W] (class position in the
    project's display order, -1 = not labelled)."""

    relpath: str
    view: PixelView
    truth: np.ndarray


def predict_positions(view: PixelView, adapter: Adapter) -> np.ndarray:
    """Predicted class positions int64 [h, w] at working resolution (argmax of the logits)."""
    if adapter is not None:
        logits = adapter(view)
    elif view.zero_shot_logits is not None:
        logits = view.zero_shot_logits
    else:  # no model at all: every pixel gets the first class
        return np.zeros(view.size, np.int64)
    return np.asarray(logits).argmax(axis=0).astype(np.int64)


def upsample_nearest(positions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer map [h, w] to ``size`` (H, W), pixel centres."""
    height, width = positions.shape
    rows = ((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64)
    cols = ((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64)
    return positions[np.minimum(rows, height - 1)][:, np.minimum(cols, width - 1)]


def positions_lut(project: Any, class_ids: Sequence[int]) -> np.ndarray:
    """Lookup table: stored label value -> position in ``class_ids`` (-1 = none)."""
    lut = np.full(int(np.iinfo(project.label_dtype).max) + 1, -1, np.int64)
    for position, class_id in enumerate(class_ids):
        lut[class_id] = position
    return lut


def score_images(
    images: Sequence[HeldOutImage],
    adapter: Adapter,
    class_names: Sequence[str],
    unseen: Sequence[str],
    collective: Collective = SINGLE,
) -> MetricsReport:
    """Data-set metrics (one confusion matrix over every pixel) of ``adapter`` on ``images``;
    with several processes, each passes its share of the images and all get the metrics of
    the summed (exact, int64) confusion matrix."""
    confusion = ConfusionMatrix(len(class_names), ignore_index=-1)
    for item in images:
        predicted = upsample_nearest(predict_positions(item.view, adapter), item.truth.shape)
        confusion.update(item.truth, predicted)
    matrix = collective.sum_array(confusion.matrix[: len(class_names)])
    count = round(collective.sum(len(images)))
    return compute_metrics(matrix, list(class_names), unseen, images=count)


def active_predictor(
    project: Any, segmenter: Any, adapter: Adapter, config: TrainConfig | None = None
) -> Callable[[Any, Any], np.ndarray]:
    """A ``metrics.evaluate_project`` predictor: ``(project, record) -> [H, W]`` class ids.

    Predicts as the training job scores: the engine's working view (or the image shrunk to
    ``config.working_size`` without an engine), ``adapter`` (None = zero-shot), argmax, nearest
    upsampling to the image size.
    """
    config = config or TrainConfig()
    class_ids, prompts = class_prompts(project)
    ids = np.asarray(class_ids, dtype=np.int64)

    def predict(project: Any, record: Any) -> np.ndarray:
        view = load_view(project, segmenter, record.relpath, prompts, config)
        positions = upsample_nearest(predict_positions(view, adapter), view.original_size)
        return ids[positions]

    return predict


def evaluate_active_job(
    project: Any,
    segmenter: Any,
    should_stop: ShouldStop = never_stop,
    relpaths: Sequence[str] | None = None,
    unseen: Sequence[str] | None = None,
) -> Job[MetricsReport]:
    """Score the project's active version (zero-shot if none) on its held-out labelled images;
    a batch job yielding one Progress per image.

    ``relpaths`` overrides the held-out set; ``unseen`` the unseen class names (default: classes
    marked ``novel``, i.e. not learned by the active version). ``segmenter`` may be None
    (versions trained on filter features only). :class:`NotEnoughLabelsError` when nothing is
    held out yet.
    """
    from training.models import load_active_adapter

    adapter = load_active_adapter(project)
    config = TrainConfig()
    wanted = list(relpaths) if relpaths is not None else list(choose_holdout(project, config))
    if not wanted:
        raise NotEnoughLabelsError(
            "No held-out images to score yet: label (or import labels for) at least 2 images "
            "(one in five labelled images is held out for scoring)."
        )
    predictor = active_predictor(project, segmenter, adapter, config)
    return (yield from evaluate_project(project, predictor, wanted, should_stop, unseen))


def evaluate_active(
    project: Any,
    segmenter: Any,
    should_stop: ShouldStop = never_stop,
    relpaths: Sequence[str] | None = None,
    unseen: Sequence[str] | None = None,
) -> MetricsReport:
    """:func:`evaluate_active_job`, drained: the active version's held-out metrics."""
    return run_job(evaluate_active_job(project, segmenter, should_stop, relpaths, unseen))
