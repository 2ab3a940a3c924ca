"""Semantic segmentation metrics over a whole data set (GZS3 conventions, shared/MODELS.md).

One confusion matrix accumulates every pixel of every image (rows = truth, columns = prediction);
nothing is averaged per image. Truth pixels equal to ``ignore_index`` are skipped. A prediction
outside ``0..K-1`` (e.g. "unlabeled" in a proposal) counts as a miss of the true class.

IoU_k = TP / (TP + FP + FN); mIoU = mean IoU over classes that occur (in truth or prediction);
PA = correct / all counted pixels; MA = mean recall over classes present in the truth; seen and
unseen mIoU over each subset; hIoU = 2 S U / (S + U).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annotator.errors import FormatError, JobCancelled
from annotator.progress import Job, Progress, ShouldStop, never_stop

if TYPE_CHECKING:
    from annotator.project import ImageRecord, Project


class ConfusionMatrix:
    """Accumulates a ``[K, K + 1]`` int64 matrix; column ``K`` counts "no valid prediction".

    ``K`` grows on demand when a truth value beyond the current size shows up.
    """

    def __init__(self, num_classes: int = 0, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes + 1), dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return self.matrix.shape[0]

    def _grow(self, size: int) -> None:
        grown = np.zeros((size, size + 1), dtype=np.int64)
        k = self.num_classes
        grown[:k, :k] = self.matrix[:, :k]
        grown[:k, size] = self.matrix[:, k]
        self.matrix = grown

    def update(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        """Add one image: ``truth`` and ``prediction`` are ``[H, W]`` integer class indices."""
        if truth.shape != prediction.shape:
            raise FormatError(
                f"Truth {truth.shape} and prediction {prediction.shape} differ in size; "
                "every prediction must match its label map pixel for pixel."
            )
        truth = truth.astype(np.int64, copy=False).ravel()
        prediction = prediction.astype(np.int64, copy=False).ravel()
        keep = (truth != self.ignore_index) & (truth >= 0)
        truth, prediction = truth[keep], prediction[keep]
        if truth.size and int(truth.max()) >= self.num_classes:
            self._grow(int(truth.max()) + 1)
        k = self.num_classes
        prediction = np.where((prediction >= 0) & (prediction < k), prediction, k)
        counts = np.bincount(truth * (k + 1) + prediction, minlength=k * (k + 1))
        self.matrix += counts.reshape(k, k + 1)


@dataclass(frozen=True)
class MetricsReport:
    """Data-set metrics. Per-class lists follow ``class_names``; ``None`` = class absent.

    Fractions are in ``[0, 1]``; ``matrix`` is the ``[K, K + 1]`` confusion matrix.
    """

    class_names: list[str]
    iou: list[float | None]
    accuracy: list[float | None]
    miou: float | None
    pixel_accuracy: float | None
    mean_accuracy: float | None
    unseen: list[str] = field(default_factory=list)
    seen_miou: float | None = None
    unseen_miou: float | None = None
    hiou: float | None = None
    images: int = 0
    matrix: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the matrix as nested lists)."""
        data = {k: v for k, v in self.__dict__.items() if k != "matrix"}
        data["per_class"] = {n: i for n, i in zip(self.class_names, self.iou, strict=True)}
        data["matrix"] = None if self.matrix is None else self.matrix.tolist()
        return data

    def format_table(self) -> str:
        """A plain-text table of per-class IoU/accuracy and the summary figures (percent)."""
        width = max([5, *(len(n) for n in self.class_names)])
        lines = [f"{'class':<{width}}  {'IoU':>6}  {'Acc':>6}  split"]
        for name, iou, acc in zip(self.class_names, self.iou, self.accuracy, strict=True):
            split = "unseen" if name in self.unseen else "seen"
            lines.append(f"{name:<{width}}  {_pct(iou):>6}  {_pct(acc):>6}  {split}")
        lines.append("")
        lines.append(
            f"images {self.images}  mIoU {_pct(self.miou)}  PA {_pct(self.pixel_accuracy)}  MA {_pct(self.mean_accuracy)}"
        )
        if self.unseen:
            lines.append(
                f"seen mIoU {_pct(self.seen_miou)}  unseen mIoU {_pct(self.unseen_miou)}  hIoU {_pct(self.hiou)}"
            )
        return "\n".join(lines)  # fmt: skip


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def harmonic_iou(seen: float | None, unseen: float | None) -> float | None:
    """hIoU = 2 S U / (S + U); ``None`` if either is undefined, 0 if both are 0."""
    if seen is None or unseen is None:
        return None
    return 0.0 if seen + unseen == 0 else 2 * seen * unseen / (seen + unseen)


def compute_metrics(
    matrix: np.ndarray, class_names: Sequence[str], unseen: Iterable[str] = (), images: int = 0
) -> MetricsReport:
    """Metrics of a ``[K, K]`` or ``[K, K + 1]`` confusion matrix (rows truth, columns prediction)."""
    k = len(class_names)
    if matrix.shape[0] != k:
        raise FormatError(f"{k} class names for a confusion matrix of {matrix.shape[0]} classes.")
    tp = np.diag(matrix[:, :k]).astype(np.float64)
    truth, predicted = matrix.sum(axis=1), matrix[:, :k].sum(axis=0)
    union = truth + predicted - tp
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union, strict=True)]
    accuracy = [float(t / n) if n > 0 else None for t, n in zip(tp, truth, strict=True)]
    total = matrix.sum()
    unseen = list(unseen)
    unknown = sorted(set(unseen) - set(class_names))
    if unknown:
        raise FormatError(
            f"Unseen classes {unknown} are not among the classes {list(class_names)}."
        )
    unseen_set = [n for n in class_names if n in set(unseen)]
    seen_miou = _mean(i for n, i in zip(class_names, iou, strict=True) if n not in unseen_set)
    unseen_miou = _mean(i for n, i in zip(class_names, iou, strict=True) if n in unseen_set)
    return MetricsReport(
        list(class_names), iou, accuracy, _mean(iou), float(tp.sum() / total) if total else None,
        _mean(accuracy), unseen_set, seen_miou if unseen_set else None,
        unseen_miou if unseen_set else None,
        harmonic_iou(seen_miou, unseen_miou) if unseen_set else None, images, matrix.copy(),
    )  # fmt: skip


# ---------------------------------------------------------------------------------- folders


def read_index_mask(path: Path) -> np.ndarray:
    """A label PNG (palette or grayscale, 8 or 16 bit) as ``[H, W]`` integer class indices."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "I;16", "I;16B", "I;16L", "I"):
                raise FormatError(
                    f"{path} is a {image.mode} image, not an index mask (palette or grayscale)."
                )
            return np.asarray(image).astype(np.int64)
    except FormatError:
        raise
    except Exception as error:
        raise FormatError(f"Cannot read the mask {path}: {error}") from error  # fmt: skip


def read_class_names(path: Path) -> list[str]:
    """Class names from a text file, one per line in index order (blank lines skipped)."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as error:
        raise FormatError(f"Cannot read the class list {path}: {error}") from error
    return [line.strip() for line in lines if line.strip()]


def _mask_files(folder: Path) -> dict[str, Path]:
    return {
        p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*.png"))
    }


def evaluate_folders(
    truth_dir: Path,
    prediction_dir: Path,
    class_names: Sequence[str] | None = None,
    unseen: Iterable[str] = (),
    ignore_index: int = 255,
) -> MetricsReport:
    """Score index-mask PNGs in ``prediction_dir`` against those in ``truth_dir`` (matched by
    relative path without suffix). Without ``class_names`` classes are named by index."""
    truth_files, predicted = _mask_files(Path(truth_dir)), _mask_files(Path(prediction_dir))
    if not truth_files:
        raise FormatError(f"No PNG masks in {truth_dir}; point --gt at the folder of label PNGs.")
    missing = sorted(set(truth_files) - set(predicted))
    if missing:
        raise FormatError(
            f"{len(missing)} truth masks have no prediction in {prediction_dir}, e.g. {missing[0]}.png."
        )
    confusion = ConfusionMatrix(len(class_names or ()), ignore_index)
    for key, path in truth_files.items():
        confusion.update(read_index_mask(path), read_index_mask(predicted[key]))
    names = list(class_names or ())
    if len(names) < confusion.num_classes:
        if class_names:
            raise FormatError(
                f"The truth holds class index {confusion.num_classes - 1} but only {len(names)} class names were given."
            )
        names = [str(i) for i in range(confusion.num_classes)]
    if confusion.num_classes < len(names):
        confusion._grow(len(names))
    return compute_metrics(confusion.matrix, names, unseen, images=len(truth_files))  # fmt: skip


# ---------------------------------------------------------------------------------- projects

#: ``predictor(project, record) -> [H, W] class-id map`` (project ids) or ``None`` to skip.
Predictor = Callable[["Project", "ImageRecord"], "np.ndarray | None"]


def stored_proposal_predictor(project: Project, record: ImageRecord) -> np.ndarray | None:
    """The default predictor of :func:`evaluate_project`: the image's stored proposal."""
    return project.load_proposal(record.relpath)


def evaluate_project(
    project: Project,
    predictor: Predictor = stored_proposal_predictor,
    relpaths: Sequence[str] | None = None,
    should_stop: ShouldStop = never_stop,
    unseen: Sequence[str] | None = None,
) -> Job[MetricsReport]:
    """Score ``predictor`` against the human labels of the project (a batch job).

    Images without human labels, or for which the predictor returns ``None``, are skipped.
    ``unseen`` names the unseen classes (default: those marked ``novel``). Class ids are
    mapped to their display order.
    """
    classes = project.list_classes()
    lut = np.full(int(np.iinfo(project.label_dtype).max) + 1, len(classes) + 1, np.int64)
    for index, info in enumerate(classes):
        lut[info.id] = index
    lut[project.unlabeled_value] = -1
    wanted = None if relpaths is None else set(relpaths)
    records = [
        r for r in project.list_images(has_labels=True) if wanted is None or r.relpath in wanted
    ]
    confusion, scored = ConfusionMatrix(len(classes), ignore_index=-1), 0
    for done, record in enumerate(records):
        if should_stop():
            raise JobCancelled("Evaluation stopped.")
        truth, prediction = project.load_labels(record.relpath), predictor(project, record)
        if truth is not None and prediction is not None:
            confusion.update(lut[truth], lut[np.asarray(prediction).astype(np.int64) % lut.size])
            scored += 1
        yield Progress(done + 1, len(records), record.relpath)
    names = [c.name for c in classes]
    if unseen is None:
        unseen = [c.name for c in classes if c.novel]
    return compute_metrics(confusion.matrix[: len(classes)], names, unseen, images=scored)  # fmt: skip


def report_to_json(report: MetricsReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
