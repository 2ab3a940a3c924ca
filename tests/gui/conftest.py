"""GUI test fixtures: small synthetic folders and the planted segmenter behind the app's seam."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from _gui_helpers import PALETTE, make_scene  # noqa: E402


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for index, split in enumerate((40, 32, 48)):
        Image.fromarray(make_scene(split=split)).save(folder / f"scene_{index}.png")
    return folder


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """Make the app load the planted segmenter (via the same seam the settings use)."""
    from annotator.engine.testing import create_planted_segmenter
    from annotator.gui import _engine

    made: list = []

    def factory(config: object) -> object:
        # The fast protocol: tiny images, no refinement (the GUI tests time the flows).
        segmenter = create_planted_segmenter(PALETTE, device="cpu", short_side=64, refine=None)
        made.append(segmenter)
        return segmenter

    monkeypatch.setattr(_engine, "create_app_segmenter", factory)
    yield made


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go (kept under tests/gui/screenshots when ANNOTATOR_SHOTS is set)."""
    import os

    target = os.environ.get("ANNOTATOR_SHOTS")
    folder = Path(target) if target else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with default settings (one test's choices never leak into the next)."""
    folder = tmp_path / "config"
    monkeypatch.setenv("ANNOTATOR_CONFIG_DIR", str(folder))
    return folder
