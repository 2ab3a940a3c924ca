"""``annotator propose``: palette PNGs mirroring the input tree, classes.json, failures listed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import annotator.engine.segmenter as segmenter_module
from annotator.cli import main
from annotator.engine.testing import TINY_MODEL, create_planted_segmenter
from tests.unit.cli.weights_cache import pretend_default_weights_are_cached

PALETTE = {"cat": (230, 30, 30), "grass": (30, 200, 30)}
TINY = ["--model", TINY_MODEL, "--pretrained", "none", "--short-side", "64"]


def plant(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, factory=None) -> None:  # noqa: ANN001
    """A machine with the default weights in its cache, whose model is the planted segmenter."""
    factory = factory or (lambda config, **kw: create_planted_segmenter(PALETTE))
    monkeypatch.setattr(segmenter_module, "create_segmenter", factory)
    pretend_default_weights_are_cached(monkeypatch, tmp_path / "cache")


def scene() -> tuple[np.ndarray, np.ndarray]:
    truth = np.ones((90, 120), np.uint8)
    truth[20:70, 10:60] = 0
    colours = np.array([PALETTE["cat"], PALETTE["grass"]], np.uint8)
    return colours[truth], truth


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    image, _ = scene()
    Image.fromarray(image).save(root / "a.png")
    Image.fromarray(image).save(root / "nested" / "b.jpg", quality=95)
    (root / "nested" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_folder_with_a_corrupt_file(folder: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    plant(monkeypatch, tmp_path)
    out = tmp_path / "out"
    code = main(["propose", str(folder), "--classes", "cat, grass", "--out", str(out)])
    assert code == 0
    _, truth = scene()
    for name in ("a.png", "nested/b.png"):
        written = Image.open(out / name)
        assert written.mode == "P"
        assert (np.asarray(written) == truth).mean() >= 0.98
    assert not (out / "nested" / "broken.png").exists()
    table = json.loads((out / "classes.json").read_text())
    assert table == {
        "classes": [
            {"index": 0, "name": "cat", "synonyms": [], "color": [128, 0, 0]},
            {"index": 1, "name": "grass", "synonyms": [], "color": [0, 128, 0]},
        ],
        "unlabeled": 255,
    }
    err = capsys.readouterr().err
    assert "broken.png" in err and "could not be read" in err


def test_real_tiny_model_end_to_end(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "propose",
            str(folder / "a.png"),
            "--classes",
            "cat,tv; monitor",
            "--out",
            str(out),
            "--background-threshold",
            "0.9",
            *TINY,
        ]
    )
    assert code == 0
    labels = np.asarray(Image.open(out / "a.png"))
    assert labels.shape == (90, 120) and labels.max() <= 2
    classes = json.loads((out / "classes.json").read_text())["classes"]
    assert [(c["name"], c["synonyms"]) for c in classes] == [
        ("cat", []),
        ("tv", ["monitor"]),
        ("other", []),
    ]


def test_nothing_readable_is_an_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    code = main(["propose", str(bad), "--classes", "cat", "--out", str(tmp_path / "o"), *TINY])
    assert code == 1
    assert "empty" in capsys.readouterr().err


def test_missing_weights_message_reaches_the_user(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    code = main(["propose", str(image), "--classes", "cat", "--out", str(tmp_path / "o")])
    assert code == 1
    assert "annotator models download ViT-B-16:openai" in capsys.readouterr().err


def test_proposals_import_as_human_labels(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """propose -> import --format masks: the proposals become the project's labels, pixel for pixel."""
    from annotator.project import Project

    plant(monkeypatch, tmp_path)
    out = tmp_path / "out"
    assert main(["propose", str(folder), "--classes", "cat, grass", "--out", str(out)]) == 0
    (folder / "nested" / "broken.png").unlink()
    assert main(["import", str(folder), "--format", "masks", str(out)]) == 0
    with Project.open(folder) as project:
        ids = {c.name: c.id for c in project.list_classes()}
        labels = project.load_labels("nested/b.jpg")
    proposed = np.asarray(Image.open(out / "nested" / "b.png"))
    expected = np.where(proposed == 0, ids["cat"], ids["grass"])
    np.testing.assert_array_equal(labels, expected)


def test_one_image_is_counted_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    plant(monkeypatch, tmp_path)
    image, out = tmp_path / "a.png", tmp_path / "out"
    Image.fromarray(scene()[0]).save(image)
    args = ["propose", str(image), "--classes", "cat, grass", "--out", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out == f"wrote 1 label map and classes.json to {out}\n"
    assert main(args) == 0  # the same settings: nothing to redo
    err = capsys.readouterr().err
    assert f"skipped 1 image already proposed in {out} with the same settings" in err
