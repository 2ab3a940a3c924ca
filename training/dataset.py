"""Which project images train, which are held out, and how they become views and targets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from annotator.wording import plural
from training.config import TrainConfig
from training.errors import NotEnoughLabelsError
from training.views import PixelView, capture_view, plain_view

#: Project setting holding the held-out image paths, so every round scores the same images.
HOLDOUT_SETTING = "training.holdout"
LABELLED_STATUSES = ("edited", "reviewed")
UNLABELLED_STATUSES = ("new", "proposed")


@dataclass(frozen=True)
class Split:
    """Relative paths: ``train`` (human labels), ``holdout`` (human labels, for scoring),
    ``unlabelled`` (candidates for pseudo-labels)."""

    train: tuple[str, ...]
    holdout: tuple[str, ...]
    unlabelled: tuple[str, ...]


def _stable_order(relpath: str) -> bytes:
    return hashlib.blake2b(relpath.encode("utf-8"), digest_size=8).digest()


def choose_holdout(project: Any, config: TrainConfig) -> tuple[str, ...]:
    """Held-out human-labelled images (imported, edited or reviewed): the user's choice, else the
    remembered set topped up by hash.

    The automatic set holds ``round(holdout * n)`` of the n labelled images (at least one once
    two are labelled). Images once held out stay held out while they keep their labels, so
    metrics of different versions compare and no held-out image ever leaks into training.
    """
    labelled = project.list_images(LABELLED_STATUSES, has_labels=True)
    reviewed = [r.relpath for r in labelled if not r.error]
    if config.holdout_images is not None:
        return tuple(p for p in config.holdout_images if p in set(reviewed))
    if config.holdout <= 0 or len(reviewed) < 2:
        return ()
    target = max(1, round(config.holdout * len(reviewed)))
    kept = [p for p in project.get_setting(HOLDOUT_SETTING, []) or [] if p in set(reviewed)]
    for relpath in sorted(reviewed, key=_stable_order):
        if len(kept) >= target:
            break
        if relpath not in kept:
            kept.append(relpath)
    if not project.read_only:
        project.set_setting(HOLDOUT_SETTING, sorted(kept))
    return tuple(sorted(kept))


def split_project(project: Any, config: TrainConfig) -> Split:
    """The :class:`Split` of ``project``; :class:`NotEnoughLabelsError` if too few to train."""
    holdout = choose_holdout(project, config)
    labelled = project.list_images(LABELLED_STATUSES, has_labels=True)
    train = tuple(r.relpath for r in labelled if not r.error and r.relpath not in holdout)
    if len(train) < config.min_train_images:
        raise NotEnoughLabelsError(
            f"No labelled images to train on yet: correct (or import labels for) at least "
            f"{plural(config.min_train_images + (1 if config.holdout > 0 else 0), 'image')} (the "
            "project has "
            f"{len(train)} for training and {len(holdout)} held out for scoring)."
        )
    unlabelled = project.list_images(UNLABELLED_STATUSES, has_labels=False)
    return Split(train, holdout, tuple(r.relpath for r in unlabelled if not r.error))


def class_prompts(project: Any) -> tuple[list[int], list[str]]:
    """(class ids, engine class strings) of the project's classes in display order."""
    classes = sorted(project.list_classes(), key=lambda c: c.order)
    return [c.id for c in classes], [c.prompt for c in classes]


def load_view(
    project: Any, segmenter: Any, relpath: str, prompts: list[str], config: TrainConfig
) -> PixelView:
    """The working view of one project image (through the engine when there is one)."""
    image = project.load_image(relpath)
    if segmenter is None:
        return plain_view(image, prompts, config.working_size)
    return capture_view(segmenter, image, prompts)
