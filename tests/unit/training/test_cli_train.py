"""``annotator train``: the table, --json, remembered engine flags, and the user-facing errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from annotator.cli import main
from annotator.project import Project
from tests.unit.training.conftest import build_project

TINY = ["--model", "annotator-tiny-vit", "--pretrained", "none", "--short-side", "64"]


def test_train_prints_json_and_remembers_the_engine(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    build_project(folder, count=8, reviewed=6, size=64).close()
    code = main(["train", str(folder), "--rounds", "1", "--steps", "40", "--json", *TINY])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["version"] == "v0001" and payload["rounds"] == ["v0001"]
    assert payload["after"]["miou"] > payload["before"]["miou"]
    assert len(payload["holdout_images"]) == 1 and len(payload["train_images"]) == 5
    with Project.open(folder, read_only=True) as project:
        assert project.get_setting("engine")["model"] == "annotator-tiny-vit"
    # No model flags this time: the remembered tiny model is used (the default ViT-B-16 has
    # no weights here, which would print a warning about filter features only).
    code = main(["train", str(folder), "--rounds", "1", "--steps", "20", "--holdout", "0.3"])
    captured = capsys.readouterr()
    assert code == 0 and "filter features only" not in captured.err
    assert "mIoU" in captured.out and "active version: v0002" in captured.out


def test_train_without_reviewed_images_says_what_to_do(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "fresh"
    build_project(folder, count=2, reviewed=0, size=32).close()
    assert main(["train", str(folder), *TINY]) == 1
    assert "review at least 2 images" in capsys.readouterr().err


def test_training_never_imports_qt() -> None:
    import subprocess

    code = (
        "import sys, training, training.job, annotator.cli.train; "
        "assert not any(m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt') "
        "or m.startswith('annotator.gui') for m in sys.modules), 'Qt imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("flag", ["--rounds", "--holdout"])
def test_bad_settings_are_rejected(tmp_path: Path, flag: str, capsys) -> None:
    folder = tmp_path / "bad"
    build_project(folder, count=3, reviewed=3, size=32).close()
    assert main(["train", str(folder), flag, "0" if flag == "--rounds" else "1.5", *TINY]) == 2
    assert f"{flag[2:]} must" in capsys.readouterr().err


def test_eval_folder_scores_the_active_version_on_the_held_out_images(
    tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "cli"
    build_project(folder, count=8, reviewed=6, size=64).close()
    assert main(["train", str(folder), "--rounds", "1", "--steps", "40", "--json", *TINY]) == 0
    trained = json.loads(capsys.readouterr().out)
    # No model flags: eval uses the engine remembered by train, and the same held-out image.
    assert main(["eval", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    scored = json.loads(captured.out)
    assert "version v0001 on the held-out" in captured.err
    assert scored["miou"] == pytest.approx(trained["after"]["miou"])
    # Asked for stored proposals explicitly: this project has none, and eval says so.
    assert main(["eval", str(folder), "--source", "proposals"]) == 1
    err = capsys.readouterr().err
    assert "stored proposals vs human labels" in err and "nothing to score" in err


def test_train_on_edited_labels_only_says_why_there_are_no_metrics(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    with build_project(folder, count=4, reviewed=3, size=64) as project:
        for record in project.list_images("reviewed"):
            project.set_status(record.relpath, "edited")  # e.g. imported labels
    assert main(["train", str(folder), "--rounds", "1", "--steps", "20", *TINY]) == 0
    captured = capsys.readouterr()
    assert "no reviewed image was held out" in captured.err
    assert "active version: v0001" in captured.out


def test_use_switches_the_active_version_without_training(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    build_project(folder, count=6, reviewed=5, size=64).close()
    assert main(["train", str(folder), "--rounds", "1", "--steps", "20", *TINY]) == 0
    capsys.readouterr()
    assert main(["train", str(folder), "--use", "none"]) == 0
    out = capsys.readouterr().out
    assert "active: zero-shot" in out and "v0001  held-out mIoU" in out and "(active)" not in out
    assert main(["train", str(folder), "--use", "v0001"]) == 0
    assert "v0001  held-out mIoU" in capsys.readouterr().out
    with Project.open(folder, read_only=True) as project:
        from training import active_version

        assert active_version(project).id == "v0001"
    assert main(["train", str(folder), "--use", "v0009"]) == 1
    assert "no version 'v0009'; versions: v0001" in capsys.readouterr().err
