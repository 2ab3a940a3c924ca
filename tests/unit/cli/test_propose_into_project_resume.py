"""``annotator propose --project P --into-project`` without ``--out`` resumes after a kill:
a rerun with the same settings skips the images whose proposals that run already stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.cli import main
from annotator.engine.testing import create_planted_segmenter
from annotator.project import Project
from tests.unit.cli.test_propose import PALETTE, plant, scene

NAMES = [f"img{i}.png" for i in range(4)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    for name in NAMES:
        Image.fromarray(scene()[0]).save(root / name)
    with Project.open(root) as opened:
        opened.add_class("cat")
        opened.add_class("grass")
    return root


def _planted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kill_at: int | None = None) -> list:
    """The planted segmenter behind the CLI; returns the list of images it was asked about.
    ``kill_at``: the run is interrupted (Ctrl+C, as a kill) when that many images are done."""
    asked: list[int] = []
    segmenter = create_planted_segmenter(PALETTE)
    predict = segmenter.predict

    def counting(*args: object, **kwargs: object) -> object:
        if kill_at is not None and len(asked) == kill_at:
            raise KeyboardInterrupt
        asked.append(1)
        return predict(*args, **kwargs)

    segmenter.predict = counting
    plant(monkeypatch, tmp_path, lambda config, **kw: segmenter)
    return asked


def test_a_killed_run_into_the_project_resumes(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["propose", "--project", str(project), "--into-project"]
    _planted(monkeypatch, tmp_path, kill_at=2)
    with pytest.raises(KeyboardInterrupt):
        main(args)
    capsys.readouterr()
    asked = _planted(monkeypatch, tmp_path)
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert len(asked) == 2  # only the two images the killed run had not stored
    assert out == f"stored 2 proposals in the project {project}\n"
    assert (
        f"skipped 2 images already proposed in the project {project} with the same settings" in err
    )
    truth = scene()[1]
    with Project.open(project) as opened:
        ids = np.array([opened.find_class("cat").id, opened.find_class("grass").id])
        for name in NAMES:
            np.testing.assert_array_equal(opened.load_proposal(name), ids[truth])
            assert opened.get_image(name).status == "proposed"


def test_a_proposal_replaced_since_or_other_settings_are_proposed_again(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["propose", "--project", str(project), "--into-project"]
    _planted(monkeypatch, tmp_path)
    assert main(args) == 0
    with Project.open(project) as opened:  # e.g. the app proposed img1 again with other settings
        cat = opened.find_class("cat").id
        opened.save_proposal("img1.png", np.full(scene()[1].shape, cat, np.uint8), 0.5)
    asked = _planted(monkeypatch, tmp_path)
    capsys.readouterr()
    assert main(args) == 0
    assert len(asked) == 1
    assert "skipped 3 images already proposed" in capsys.readouterr().err
    with Project.open(project) as opened:
        opened.add_class("sky")  # other classes: other proposals
    asked = _planted(monkeypatch, tmp_path)
    assert main(args) == 0
    assert len(asked) == len(NAMES)
    err = capsys.readouterr().err
    assert f"note: the project {project} held proposals made with other settings" in err
    assert "skipped" not in err
