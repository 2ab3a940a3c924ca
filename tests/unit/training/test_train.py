"""Retraining end to end on a generated project: scores, versions, cancel, rollback, novel names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotator.engine import EngineConfig, create_segmenter
from annotator.engine.testing import TINY_MODEL, create_planted_segmenter
from annotator.errors import JobCancelled
from annotator.progress import run_job
from tests.unit.training.conftest import build_project
from training import (
    NotEnoughLabelsError,
    TrainConfig,
    activate_version,
    evaluate_active,
    list_versions,
    load_active_adapter,
    rollback,
    train,
)
from training.dataset import class_prompts

FAST = {"steps": 80, "samples_per_class": 600, "batch_size": 1024}


@pytest.fixture(scope="module")
def tiny_segmenter():
    return create_segmenter(
        EngineConfig(model=TINY_MODEL, pretrained=None, short_side=96, device="cpu")
    )


def _proposal(segmenter, project, relpath: str) -> np.ndarray:
    """What the user sees: the engine's probabilities with the active version's head."""
    segmenter.set_image(project.load_image(relpath))
    _, prompts = class_prompts(project)
    return segmenter.predict(prompts, adapter=load_active_adapter(project)).probabilities


def test_retraining_raises_held_out_miou_far_above_zero_shot(
    labelled_project, tiny_segmenter
) -> None:
    progress = []
    result = run_job(
        train(labelled_project, tiny_segmenter, TrainConfig(rounds=2, **FAST)), progress.append
    )
    before, after = result.metrics_before, result.metrics_after
    # The random tiny ViT cannot name these textures: its proposals are near chance (4 classes);
    # a head on filter + CLIP features separates them almost perfectly.
    assert after.miou >= before.miou + 0.3 and after.pixel_accuracy > 0.9
    assert result.split.holdout and not set(result.split.holdout) & set(result.split.train)
    losses = [p.data["loss"] for p in progress if isinstance(p.data, dict) and "loss" in p.data]
    assert losses == result.losses and losses[-1] < losses[0]
    assert [v.id for v in list_versions(labelled_project)] == ["v0001", "v0002"]
    assert [v.active for v in list_versions(labelled_project)] == [False, True]
    # Scores of the active version, recomputed the way `annotator eval` does, agree.
    again = evaluate_active(labelled_project, tiny_segmenter)
    assert again.miou == pytest.approx(after.miou)
    split = evaluate_active(labelled_project, tiny_segmenter, unseen=["water"])
    assert split.unseen == ["water"] and split.miou == pytest.approx(after.miou)
    assert result.version.metrics["after"]["miou"] == pytest.approx(after.miou)


def test_self_training_uses_only_confident_unlabelled_pixels(labelled_project) -> None:
    result = run_job(train(labelled_project, None, TrainConfig(rounds=2, **FAST)))
    assert result.pseudo_pixels and result.pseudo_pixels[0] > 0
    # At most top_fraction of each class and image is taken, class-balanced and capped.
    assert result.pseudo_pixels[0] <= 4 * 4 * FAST["samples_per_class"]
    for relpath in result.split.unlabelled:
        assert labelled_project.load_labels(relpath) is None
        assert labelled_project.get_image(relpath).status == "new"
    strict = run_job(
        train(labelled_project, None, TrainConfig(rounds=2, pseudo_min_confidence=1.01, **FAST))
    )
    assert strict.pseudo_pixels == [0]


def test_without_reviewed_images_the_user_is_told_what_to_do(tmp_path: Path) -> None:
    project = build_project(tmp_path / "empty", count=3, reviewed=0)
    with pytest.raises(NotEnoughLabelsError, match=r"import labels for\) at least 2 images"):
        run_job(train(project, None, TrainConfig(**FAST)))
    project.close()


def test_cancel_keeps_the_previous_version(labelled_project, tiny_segmenter) -> None:
    run_job(train(labelled_project, tiny_segmenter, TrainConfig(rounds=1, **FAST)))
    relpath = "img011.png"
    before = _proposal(tiny_segmenter, labelled_project, relpath)
    calls = iter(range(10_000))
    stop_during_fit = train(
        labelled_project, tiny_segmenter, TrainConfig(rounds=2, seed=5, **FAST),
        should_stop=lambda: next(calls) > 25,
    )  # fmt: skip
    with pytest.raises(JobCancelled):
        run_job(stop_during_fit)
    assert [v.id for v in list_versions(labelled_project) if v.active] == ["v0001"]
    np.testing.assert_array_equal(_proposal(tiny_segmenter, labelled_project, relpath), before)


def test_rollback_restores_proposals_exactly(labelled_project, tiny_segmenter) -> None:
    relpath = "img012.png"
    zero_shot = _proposal(tiny_segmenter, labelled_project, relpath)
    run_job(train(labelled_project, tiny_segmenter, TrainConfig(rounds=1, **FAST)))
    first = _proposal(tiny_segmenter, labelled_project, relpath)
    result = run_job(
        train(labelled_project, tiny_segmenter, TrainConfig(rounds=1, seed=9, hidden=32, **FAST))
    )
    if not result.activated:  # it scored lower, so v0001 stayed active: the user switches
        assert "v0001 stays active" in result.regression_note
        activate_version(labelled_project, "v0002")
    second = _proposal(tiny_segmenter, labelled_project, relpath)
    assert not np.array_equal(first, second)
    assert rollback(labelled_project).id == "v0001"
    np.testing.assert_array_equal(_proposal(tiny_segmenter, labelled_project, relpath), first)
    activate_version(labelled_project, "v0002")
    np.testing.assert_array_equal(_proposal(tiny_segmenter, labelled_project, relpath), second)
    activate_version(labelled_project, None)
    np.testing.assert_array_equal(_proposal(tiny_segmenter, labelled_project, relpath), zero_shot)


PALETTE = {"red": (200, 40, 40), "green": (40, 180, 40), "blue": (40, 40, 200)}


def _painted(rng: np.random.Generator, colours: list[str], size: int = 64) -> np.ndarray:
    """Vertical stripes of palette colours with a little noise; uint8 [S, S, 3]."""
    image = np.zeros((size, size, 3), np.float32)
    for k, name in enumerate(colours):
        image[:, k * size // len(colours) : (k + 1) * size // len(colours)] = PALETTE[name]
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def test_a_class_typed_after_retraining_still_gets_zero_shot_proposals(tmp_path: Path) -> None:
    from PIL import Image

    from annotator.project import Project

    rng = np.random.default_rng(0)
    folder = tmp_path / "painted"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(_painted(rng, ["red", "green"][:: 1 if i % 2 else -1])).save(
            folder / f"p{i}.png"
        )
    Image.fromarray(_painted(rng, ["red", "green", "blue"])).save(folder / "z_new.png")
    segmenter = create_planted_segmenter(PALETTE, short_side=64, device="cpu")
    with Project.open(folder) as project:
        red, green = project.add_class("red").id, project.add_class("green").id
        for i in range(4):
            image = project.load_image(f"p{i}.png")
            labels = np.where(image[:, :, 0] > 120, red, green).astype(np.uint8)
            project.save_labels(f"p{i}.png", labels, status="reviewed")
        run_job(train(project, segmenter, TrainConfig(rounds=1, **FAST)))
        blue = project.add_class("blue")
        _, prompts = class_prompts(project)
        segmenter.set_image(project.load_image("z_new.png"))
        adapter = load_active_adapter(project)
        labels = segmenter.predict(prompts, adapter=adapter).label_map
        head_only = adapter.head_logits(_view(segmenter, project, prompts)).argmax(0)
    third = labels[:, 44:]  # the blue stripe, away from its border
    assert prompts[2] == blue.name == "blue"
    assert (third == 2).mean() > 0.9
    assert (labels[:, :20] == 0).mean() > 0.9 and (labels[:, 24:40] == 1).mean() > 0.9
    assert not (head_only == 2).any()  # the head alone cannot know the new class


def _view(segmenter, project, prompts):
    from training.views import capture_view

    return capture_view(segmenter, project.load_image("z_new.png"), prompts)


def test_reviewed_images_without_labelled_pixels_are_explained(tmp_path: Path) -> None:
    project = build_project(tmp_path / "blank", count=3, reviewed=0, size=32)
    blank = np.full((32, 32), project.unlabeled_value, project.label_dtype)
    for relpath in ("img000.png", "img001.png"):
        project.save_labels(relpath, blank, status="edited")
    with pytest.raises(NotEnoughLabelsError, match="no labelled pixels"):
        run_job(train(project, None, TrainConfig(**FAST)))
    project.close()
