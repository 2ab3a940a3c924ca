"""``annotator propose --proposer zegformer --write-segments``: the same label PNGs plus
segments/ (index map per image + JSON of per-segment scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from annotator.cli import main
from annotator.engine.proposers.export import load_segment_index
from annotator.engine.testing import create_planted_segmenter
from tests.unit.cli.test_propose import PALETTE, plant, scene


def _planted(config, **kw):  # noqa: ANN001, ANN202 - the create_segmenter seam
    return create_planted_segmenter(PALETTE, proposer=config.proposer, segments=config.segments)


def test_zegformer_writes_labels_and_segments(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    plant(monkeypatch, tmp_path, _planted)
    image, truth = scene()
    Image.fromarray(image).save(tmp_path / "a.png")
    out = tmp_path / "out"
    args = ["propose", str(tmp_path / "a.png"), "--classes", "cat, grass", "--out", str(out)]
    code = main([*args, "--proposer", "zegformer", "--segments", "6", "--write-segments"])
    assert code == 0
    labels = np.asarray(Image.open(out / "a.png"))
    assert (labels == truth).mean() >= 0.99
    index = load_segment_index(out / "segments" / "a.png")
    assert index.shape == truth.shape
    document = json.loads((out / "segments" / "a.json").read_text())
    assert document["classes"] == ["cat", "grass"] and document["variant"] == "img"
    segments = document["segments"]
    assert len(segments) == index.max() + 1 <= 6
    for segment in segments:
        inside = index == segment["index"]
        assert segment["area"] == int(inside.sum())
        assert ["cat", "grass"][segment["label"]] == segment["top"][0]["name"]
        if segment["area"] < 0.02 * truth.size:
            # slivers of ~50 px along the cat's edge pool patch features that are mostly the
            # neighbour's; the label map above is >= 99% right either way
            continue
        majority = np.bincount(truth[inside], minlength=2).argmax()
        assert segment["top"][0]["name"] == ["cat", "grass"][majority]
        assert segment["label"] == majority


def test_dense_proposer_writes_no_segments(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    plant(monkeypatch, tmp_path, _planted)
    Image.fromarray(scene()[0]).save(tmp_path / "a.png")
    out = tmp_path / "out"
    args = ["propose", str(tmp_path / "a.png"), "--classes", "cat, grass", "--out", str(out)]
    assert main([*args, "--write-segments"]) == 0
    assert (out / "a.png").exists() and not (out / "segments").exists()
