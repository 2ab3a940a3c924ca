"""CaGNet's generative step: on a world where zero-shot cannot name classes (their text embeddings
are turned by a rotation it does not know) and two classes are never labelled, generated features
teach the head those classes; with random text embeddings nothing transfers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from annotator.progress import run_job
from training import TrainConfig, list_versions, load_active_adapter, train
from training.cagnet import CaGNetSettings
from training.cagnet.networks import ContextModule, class_mmd, kl_divergence, mmd
from training.cagnet.world import WORLD_UNSEEN, build_world_project, create_world_segmenter

FAST = {"steps": 100, "samples_per_class": 300, "batch_size": 1024}
GENERATIVE = CaGNetSettings(steps=160, warmup=50, batch_maps=4, batch_pixels=512, fake_pixels=512)


def _train(folder: Path, generative: bool, random_text: bool = False, rounds: int = 1):
    project, holdout = build_world_project(folder, train=10, holdout=8, unlabelled=4, size=64)
    segmenter = create_world_segmenter(random_text=random_text, short_side=64, device="cpu")
    config = TrainConfig(
        rounds=rounds, holdout_images=tuple(holdout), generative=generative, cagnet=GENERATIVE,
        **FAST,
    )  # fmt: skip
    result = run_job(train(project, segmenter, config))
    return project, segmenter, result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    found = {
        "plain": _train(base / "plain", generative=False),
        "generative": _train(base / "generative", generative=True, rounds=2),
        "control": _train(base / "control", generative=True, random_text=True),
    }
    yield found
    for project, _, _ in found.values():
        project.close()


def test_generated_features_teach_the_classes_nobody_labelled(runs) -> None:
    _, _, plain = runs["plain"]
    _, _, generative = runs["generative"]
    zero_shot = generative.metrics_before
    assert generative.unseen == list(WORLD_UNSEEN) and generative.generative
    # Zero-shot does not know the rotation: it names (almost) nothing right, least of all the
    # unseen classes; retraining without generation has no way to learn them either.
    assert zero_shot.unseen_miou < 0.1 and plain.metrics_after.unseen_miou < 0.1
    after = generative.metrics_after
    assert after.unseen_miou > zero_shot.unseen_miou + 0.3
    assert after.unseen_miou > plain.metrics_after.unseen_miou + 0.3
    assert after.hiou > plain.metrics_after.hiou + 0.3
    # Seen classes are kept: at least as good as plain retraining, whose seen pixels the wrong
    # zero-shot logits of the unseen classes partly steal in the fusion.
    figures = f"seen {after.seen_miou:.3f} vs plain {plain.metrics_after.seen_miou:.3f}"
    assert after.seen_miou > 0.6 and after.seen_miou >= plain.metrics_after.seen_miou - 0.02, (
        figures
    )


def test_random_text_embeddings_give_no_gain(runs) -> None:
    _, _, plain = runs["plain"]
    _, _, control = runs["control"]
    assert control.generative
    assert control.metrics_after.unseen_miou < 0.1
    assert control.metrics_after.unseen_miou < plain.metrics_after.unseen_miou + 0.05


def test_generated_and_pseudo_labelled_classes_stay_unseen(runs) -> None:
    project, segmenter, generative = runs["generative"]
    names = {info.id: info.name for info in project.list_classes()}
    unseen_ids = {cid for cid, name in names.items() if name in WORLD_UNSEEN}
    assert generative.pseudo_pixels and generative.pseudo_pixels[0] > 0  # self-training ran
    for version in list_versions(project):
        assert set(version.extra["class_ids"]) == set(names)  # rows for every class
        assert set(version.extra["seen_class_ids"]) == set(names) - unseen_ids
    assert generative.activated
    assert all(project.get_class(cid).novel for cid in unseen_ids)
    # The active version, loaded from disk, proposes the unseen class where the world has it.
    from training.cagnet.world import WORLD_CLASSES, world_colour

    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = np.asarray(world_colour("midbay")) * 255
    image[:, 32:] = np.asarray(world_colour("lowash")) * 255
    segmenter.set_image(image)
    labels = segmenter.predict(list(WORLD_CLASSES), adapter=load_active_adapter(project)).label_map
    order = list(WORLD_CLASSES)
    # (away from the border: within a patch or two of it the CLIP grid blends both colours)
    assert (labels[:, 4:20] == order.index("midbay")).mean() > 0.9
    assert (labels[:, 44:60] == order.index("lowash")).mean() > 0.9


def test_mmd_is_zero_only_for_matching_distributions() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(200, 4, generator=generator)
    b = torch.randn(200, 4, generator=generator)
    sigmas = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0)
    assert mmd(a, b, sigmas) < 0.2 < mmd(a, b + 3.0, sigmas)
    labels = torch.tensor([0] * 100 + [1] * 100)
    paired = class_mmd(a, a.clone(), labels, sigmas)
    assert paired < 1e-3


def test_context_module_gives_a_latent_code_per_pixel_and_a_kl() -> None:
    module = ContextModule(channels=6, hidden=8, latent=3, dilations=(1, 2, 5))
    mu, logvar = module(torch.randn(2, 6, 9, 7))
    assert mu.shape == logvar.shape == (2, 3, 9, 7)
    zeros = torch.zeros(5, 3)
    assert float(kl_divergence(zeros, zeros)) == 0.0
    assert float(kl_divergence(zeros + 1.0, zeros)) == pytest.approx(1.5)


def test_generative_without_clip_weights_says_what_to_do(tmp_path: Path) -> None:
    from training.errors import TrainingError

    project, holdout = build_world_project(
        tmp_path / "w", train=2, holdout=1, unlabelled=0, size=32
    )
    with pytest.raises(TrainingError, match="needs the CLIP text embeddings.*--no-generative"):
        run_job(train(project, None, TrainConfig(generative=True, **FAST)))
    project.close()


def test_the_generative_step_runs_when_driven_under_inference_mode(tmp_path: Path) -> None:
    """The GUI's engine worker steps batch jobs inside torch.inference_mode()."""
    project, holdout = build_world_project(
        tmp_path / "w", train=3, holdout=1, unlabelled=0, size=32
    )
    segmenter = create_world_segmenter(short_side=32, device="cpu")
    config = TrainConfig(
        rounds=1, steps=10, samples_per_class=100, batch_size=256, generative=True,
        cagnet=CaGNetSettings(steps=6, warmup=2, batch_maps=2, batch_pixels=64, fake_pixels=90),
    )  # fmt: skip
    job = train(project, segmenter, config)
    while True:
        with torch.inference_mode():
            try:
                next(job)
            except StopIteration as done:
                result = done.value
                break
    assert result.generative and set(result.version.extra["class_ids"]) == {
        info.id for info in project.list_classes()
    }
    project.close()


def test_image_maps_average_filters_over_grid_cells_of_any_size() -> None:
    from training.cagnet.data import image_maps
    from training.views import PixelView

    rng = np.random.default_rng(0)
    filters = rng.random((39, 50, 70)).astype(np.float32)  # 39 channels, 50 x 70 pixels
    targets = np.full((50, 70), -1, np.int64)
    targets[:, 35:] = 4
    view = PixelView(np.zeros((50, 70, 3), np.uint8), rng.random((8, 4, 5)).astype(np.float32),
                     None, ["a"], (50, 70), 16)  # fmt: skip
    maps = image_maps(view, filters, targets, 10, rng)
    assert maps.filters.shape == (39, 4, 5) and maps.labels.shape == (4, 5)
    assert maps.labels[:, :2].tolist() == [[-1, -1]] * 4 and (maps.labels[:, 3:] == 4).all()
    assert (maps.pixel_labels == 4).all() and len(maps.pixel_labels) == 10
    view.image = view.image[:48, :60]  # 4 x 5 cells of 12 x 12 pixels
    even = image_maps(view, filters[:, :48, :60], targets[:48, :60], 10, rng)
    np.testing.assert_allclose(even.filters[:, 0, 0], filters[:, :12, :12].mean((1, 2)), rtol=1e-5)
