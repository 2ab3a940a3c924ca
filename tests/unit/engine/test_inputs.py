"""Whatever the file holds, proposals come back at the displayed size with the right labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.engine.testing import create_planted_segmenter
from annotator.imageio import load_image
from tests.unit.engine.helpers import PALETTE, painted_scene

GRAY = {"dark": (40, 40, 40), "light": (220, 220, 220)}


def two_tone(height: int = 120, width: int = 160) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((height, width), np.int64)
    truth[:, width // 2 :] = 1
    return truth, np.where(truth == 1, 220, 40).astype(np.uint8)


def propose_file(path: Path, palette: dict) -> np.ndarray:
    segmenter = create_planted_segmenter(palette)
    segmenter.set_image(load_image(path))
    return segmenter.predict(list(palette)).label_map


def test_grayscale_file(tmp_path: Path) -> None:
    truth, gray = two_tone()
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    assert (propose_file(tmp_path / "gray.png", GRAY) == truth).mean() >= 0.99


def test_rgba_file(tmp_path: Path) -> None:
    image, truth = painted_scene(120, 160)
    rgba = np.dstack([image, np.full(truth.shape, 90, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert (propose_file(tmp_path / "rgba.png", PALETTE) == truth).mean() >= 0.98


def test_16_bit_file(tmp_path: Path) -> None:
    truth, _ = two_tone()
    deep = np.where(truth == 1, 60000, 2000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # stretched to 0 / 255 on load
    labels = propose_file(tmp_path / "deep.png", {"dark": (0, 0, 0), "light": (255, 255, 255)})
    assert (labels == truth).mean() >= 0.99


def test_cmyk_file(tmp_path: Path) -> None:
    image, truth = painted_scene(120, 160)
    Image.fromarray(image).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=98)
    assert (propose_file(tmp_path / "cmyk.jpg", PALETTE) == truth).mean() >= 0.97


def test_exif_rotated_file_is_labelled_as_displayed(tmp_path: Path) -> None:
    image, truth = painted_scene(120, 160)
    stored = np.ascontiguousarray(np.rot90(image, k=1))  # orientation 6 turns it back on display
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "rotated.png", exif=exif)
    labels = propose_file(tmp_path / "rotated.png", PALETTE)
    assert labels.shape == truth.shape
    assert (labels == truth).mean() >= 0.98


def test_numpy_variants_are_accepted() -> None:
    segmenter = create_planted_segmenter(GRAY)
    truth, gray = two_tone()
    for image in (gray, gray[:, :, None], np.dstack([gray] * 4), gray.astype(np.uint16) * 257):
        segmenter.set_image(image)
        assert (segmenter.predict(list(GRAY)).label_map == truth).mean() >= 0.99
    with pytest.raises(ValueError, match="HxWx3"):
        segmenter.set_image(np.zeros((4, 4, 5), np.uint8))


def test_12000_by_9000_image() -> None:
    height, width = 9000, 12000
    image = np.empty((height, width, 3), np.uint8)
    image[:] = PALETTE["grass"]
    image[: height // 3] = PALETTE["sky"]
    image[4000:7000, 2000:6000] = PALETTE["cat"]
    segmenter = create_planted_segmenter(PALETTE)
    segmenter.set_image(image)
    proposal = segmenter.predict(["cat", "grass", "sky"])
    labels = proposal.label_map
    assert labels.shape == (height, width) and labels.dtype == np.uint8
    assert proposal.confidence.shape == (height, width)
    assert proposal.probabilities.shape[1:] == (336, 448)  # short side 336 (default preset)
    assert labels[5500, 4000] == 0 and labels[8000, 10000] == 1 and labels[1000, 1000] == 2
    assert (labels[4100:6900:50, 2100:5900:50] == 0).all()
