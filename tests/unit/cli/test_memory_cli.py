"""``annotator import`` teaches the class memory; ``annotator memory``; ``propose --project``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import annotator.engine.segmenter as segmenter_module
from annotator.cli import main
from annotator.project import Project
from tests.unit.cli.weights_cache import pretend_default_weights_are_cached
from tests.unit.engine.memory_world import CLASSES, create_confused_segmenter, iou, scene

TRAIN, TEST = 3, 3


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A project (classes added dog, cat, grass, then shown grass, cat, dog: ids differ from
    display order), labelled masks for the train images (dog never labelled), test scenes."""
    segmenter = create_confused_segmenter()
    monkeypatch.setattr(segmenter_module, "create_segmenter", lambda config, **kw: segmenter)
    # The planted segmenter stands for a machine with weights: the cache holds them.
    pretend_default_weights_are_cached(monkeypatch, tmp_path / "cache")
    rng = np.random.default_rng(5)
    root, masks = tmp_path / "proj", tmp_path / "labels" / "masks"
    root.mkdir()
    masks.mkdir(parents=True)
    truths = {}
    for i in range(TRAIN + TEST):
        image, truth = scene(rng)
        name = f"train{i}" if i < TRAIN else f"test{i}"
        Image.fromarray(image).save(root / f"{name}.png")
        truths[name] = truth
        if i < TRAIN:
            Image.fromarray(np.where(truth == 2, 255, truth).astype(np.uint8)).save(
                masks / f"{name}.png"
            )
    document = {
        "classes": [{"index": i, "name": n} for i, n in enumerate(CLASSES)],
        "unlabeled": 255,
    }
    (masks.parent / "classes.json").write_text(json.dumps(document))
    with Project.open(root) as project:
        ids = {name: project.add_class(name).id for name in ("dog", "cat", "grass")}
        project.reorder_classes([ids[name] for name in CLASSES])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    image, truths["outside"] = scene(rng)
    Image.fromarray(image).save(outside / "outside.png")
    return {"root": root, "labels": masks.parent, "ids": ids, "truth": truths, "outside": outside}


def _read(folder: Path, names: list[str]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(folder / f"{name}.png")) for name in names])


def test_imported_labels_fix_proposals_without_training(
    world: dict, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    root = world["root"]
    assert main(["import", str(root), "--format", "masks", str(world["labels"])]) == 0
    assert (root / ".annotator" / "memory" / "memory.npz").exists()
    capsys.readouterr()
    assert main(["memory", str(root)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["grass", "3", "on"]
    assert table[2].split() == ["cat", "3", "on"]
    assert table[3].split() == ["dog", "0", "-"]

    tests = [f"test{i}" for i in range(TRAIN, TRAIN + TEST)]
    paths = [str(root / f"{name}.png") for name in tests] + [str(world["outside"])]
    on, off = tmp_path / "on", tmp_path / "off"
    assert main(["propose", *paths, "--project", str(root), "--out", str(on)]) == 0
    assert main(["propose", *paths, "--project", str(root), "--out", str(off), "--no-memory"]) == 0
    names = [*tests, "outside"]
    truth = np.stack([world["truth"][name] for name in names])
    cat, dog = CLASSES.index("cat"), CLASSES.index("dog")  # PNG index = display order
    with_memory, zero_shot = _read(on, names), _read(off, names)
    assert iou(truth, zero_shot, cat) < 0.05 and iou(truth, zero_shot, dog) < 0.05
    assert iou(truth, with_memory, cat) > 0.7 and iou(truth, with_memory, dog) > 0.7
    assert main(["export", str(root), "--format", "masks", "--out", str(tmp_path / "export")]) == 0
    exported = json.loads((tmp_path / "export" / "classes.json").read_text())
    exported.pop("statuses")  # the export also records each image's review status
    assert json.loads((on / "classes.json").read_text()) == exported


def test_rebuild_learns_every_label_again(world: dict, capsys) -> None:  # noqa: ANN001
    root = world["root"]
    main(["import", str(root), "--format", "masks", str(world["labels"])])
    (root / ".annotator" / "memory" / "memory.npz").unlink()
    capsys.readouterr()
    assert main(["memory", str(root)]) == 0
    assert "no class memory yet" in capsys.readouterr().out
    assert main(["memory", str(root), "--rebuild"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt the class memory from 3 labelled images" in out
    assert out.splitlines()[3].split() == ["cat", "3", "on"]


def test_into_project_stores_proposals_with_class_ids(world: dict, capsys) -> None:  # noqa: ANN001
    root, ids = world["root"], world["ids"]
    main(["import", str(root), "--format", "masks", str(world["labels"])])
    capsys.readouterr()
    code = main(["propose", str(world["outside"] / "outside.png"), "--project", str(root),
                 "--into-project"])  # fmt: skip
    assert code == 1  # nothing stored: the image is not the project's
    assert "not an image of the project" in capsys.readouterr().err
    assert main(["propose", "--project", str(root), "--into-project"]) == 0
    assert "stored 3 proposals" in capsys.readouterr().out
    with Project.open(root) as project:
        statuses = {r.relpath: r.status for r in project.list_images()}
        queue = [r.relpath for r in project.review_queue()]
        proposal = project.load_proposal("test3.png")
        confidences = [project.get_image(r).mean_confidence for r in queue]
    assert statuses == {**{f"train{i}.png": "reviewed" for i in range(TRAIN)},
                        **{f"test{i}.png": "proposed" for i in range(TRAIN, TRAIN + TEST)}}  # fmt: skip
    assert sorted(queue) == [f"test{i}.png" for i in range(TRAIN, TRAIN + TEST)]
    assert confidences == sorted(confidences)
    truth = world["truth"]["test3"]
    for name, index in (("cat", 1), ("dog", 2), ("grass", 0)):
        assert (proposal[truth == index] == ids[name]).mean() > 0.7, name  # boundaries blur


def test_project_flags_need_a_project(world: dict, capsys) -> None:  # noqa: ANN001
    assert main(["propose", str(world["outside"]), "--into-project"]) == 2
    assert "need --project" in capsys.readouterr().err
    assert main(["propose", str(world["outside"]), "--project", str(world["root"]),
                 "--classes", "cat"]) == 2  # fmt: skip


def test_import_without_memory_then_update(world: dict, capsys) -> None:  # noqa: ANN001
    root = world["root"]
    main(["import", str(root), "--format", "masks", str(world["labels"]), "--no-memory"])
    assert not (root / ".annotator" / "memory").exists()
    capsys.readouterr()
    assert main(["memory", str(root), "--update"]) == 0
    out = capsys.readouterr().out
    assert "learned 3 labelled images" in out
    assert out.splitlines()[3].split() == ["cat", "3", "on"]
    assert main(["memory", str(root), "--update"]) == 0
    assert "learned 0 labelled images" in capsys.readouterr().out


def test_a_stopped_learning_job_keeps_what_it_learned(world: dict) -> None:
    from annotator.engine.memory import (
        ClassMemory,
        learn_project_job,
        load_project_memory,
        memory_key,
    )
    from annotator.errors import JobCancelled
    from annotator.progress import run_job

    root = world["root"]
    main(["import", str(root), "--format", "masks", str(world["labels"]), "--no-memory"])
    segmenter = create_confused_segmenter()
    steps = iter([False, True])
    with Project.open(root) as project:
        memory = ClassMemory(memory_key(segmenter))
        with pytest.raises(JobCancelled, match="run it again"):
            run_job(learn_project_job(project, segmenter, memory, lambda: next(steps)))
        assert list(load_project_memory(project, segmenter).learned) == ["train0.png"]
