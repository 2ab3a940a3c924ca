"""``annotator import`` on a machine without CLIP weights: the labels import at once and a
short note says the class memory was not updated, without loading torch or a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import annotator.engine.segmenter as segmenter_module
from annotator.cli import main
from annotator.cli.memory import default_engine_args, missing_weights
from annotator.engine.config import EngineConfig
from annotator.project import Project


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A project of two images and a masks folder labelling both (class 0 "sky" on top)."""
    root, masks = tmp_path / "proj", tmp_path / "labels" / "masks"
    root.mkdir()
    masks.mkdir(parents=True)
    for name in ("a", "b"):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(root / f"{name}.png")
        mask = np.full((8, 10), 255, np.uint8)
        mask[:3] = 0
        Image.fromarray(mask).save(masks / f"{name}.png")
    document = {"classes": [{"index": 0, "name": "sky"}], "unlabeled": 255}
    (masks.parent / "classes.json").write_text(json.dumps(document))
    return root, masks.parent


def test_import_without_weights_skips_the_memory_with_a_note_and_no_model(
    folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("no model may be built when the cache holds no weights")

    monkeypatch.setattr(segmenter_module, "create_segmenter", no_model)
    root, labels = folders
    assert main(["import", str(root), "--format", "masks", str(labels)]) == 0
    out, err = capsys.readouterr()
    assert "imported 2 images" in out
    assert (
        "note: the class memory was not updated: the CLIP weights ViT-B-16:openai are not in "
        "the cache ('annotator models info' says how to get them)"
    ) in err
    assert f"run 'annotator memory {root} --update'" in err
    with Project.open(root) as project:
        labels_a = project.load_labels("a.png")
        sky, unlabeled = project.find_class("sky").id, project.unlabeled_value
    assert (labels_a[:3] == sky).all() and (labels_a[3:] == unlabeled).all()


def test_missing_weights_looks_only_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotator.cli import _model_table
    from annotator.engine import weights

    offline = EngineConfig(download=False, cache_dir=str(tmp_path))
    assert missing_weights(offline) == "the CLIP weights ViT-B-16:openai are not in the cache"
    source = _model_table.weights_source("ViT-B-16", "openai")
    folder = weights.cached_weights_folder(source, tmp_path)
    folder.mkdir(parents=True)
    (folder / source.hf_filenames[0]).write_bytes(b"present")
    assert missing_weights(offline) is None  # there: the engine loads (and checks) them
    assert missing_weights(EngineConfig(pretrained=None, download=False)) is None  # random
    gone = tmp_path / "gone.safetensors"
    assert missing_weights(EngineConfig(pretrained=str(gone))) == (
        f"the weights file {gone} does not exist"
    )
    for flag in ("HF_HUB_OFFLINE", "ANNOTATOR_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    # Downloads on: the engine may still fetch them (and says so when it cannot).
    assert missing_weights(EngineConfig(download=True, cache_dir=str(tmp_path / "x"))) is None
    assert default_engine_args().no_download  # import never downloads
