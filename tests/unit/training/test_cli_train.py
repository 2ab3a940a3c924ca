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
    assert "mIoU" in captured.out and "seen mIoU" in captured.out and "hIoU" in captured.out
    # Fewer steps score lower than v0001 on the same held-out images: v0001 stays active.
    assert "active version: v0001 (new: v0002)" in captured.out
    assert "v0002 scores lower on the held-out images than the active model v0001" in captured.err


def test_train_without_reviewed_images_says_what_to_do(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "fresh"
    build_project(folder, count=2, reviewed=0, size=32).close()
    assert main(["train", str(folder), *TINY]) == 1
    err = capsys.readouterr().err
    assert "import labels for) at least 2 images" in err
    assert "it/s" not in err  # no empty progress bar before the reason


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


def test_imported_labels_are_held_out_and_scored(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    with build_project(folder, count=40, reviewed=40, size=32) as project:
        for record in project.list_images("reviewed"):
            project.set_status(record.relpath, "edited")  # as `annotator import` leaves them
    args = ["train", str(folder), "--rounds", "1", "--steps", "20", "--holdout", "0.25"]
    assert main([*args, "--json", *TINY]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["holdout_images"]) == 10 and len(payload["train_images"]) == 30
    assert payload["before"]["miou"] is not None and payload["after"]["miou"] is not None
    assert payload["note"] is None and payload["seen"] and payload["unseen"] == []


def test_json_says_why_there_are_no_metrics(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    with build_project(folder, count=3, reviewed=1, size=32) as project:
        project.set_status("img000.png", "edited")
    args = ["train", str(folder), "--rounds", "1", "--steps", "10", "--generative-steps", "20"]
    assert main([*args, "--json", *TINY]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["holdout_images"] == [] and payload["after"]["miou"] is None
    assert "no labelled image was held out" in payload["note"]
    assert payload["active"] == "v0001"


def test_use_switches_the_active_version_without_training(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    build_project(folder, count=6, reviewed=5, size=64).close()
    assert main(["train", str(folder), "--rounds", "1", "--steps", "20", *TINY]) == 0
    capsys.readouterr()
    with Project.open(folder, read_only=True) as project:
        from training import list_versions

        stored = list_versions(project)[0].metrics
    assert main(["train", str(folder), "--use", "none"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Each version shows its stored held-out scores; zero-shot only is an entry of its own.
    after, before = stored["after"], stored["before"]
    # (every class is labelled here: no seen/unseen split, so only mIoU is a figure)
    assert lines[0] == f"v0001  round 1  mIoU {100 * after['miou']:.1f}  seen -  unseen -  hIoU -"
    assert lines[1] == (
        f"zero-shot only  mIoU {100 * before['miou']:.1f}  seen -  unseen -  hIoU -  (active)"
    )
    assert main(["train", str(folder), "--use", "v0001"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("(active)")
    assert main(["train", str(folder), "--list"]) == 0
    assert "v0001  round 1  mIoU" in capsys.readouterr().out
    with Project.open(folder, read_only=True) as project:
        from training import active_version

        assert active_version(project).id == "v0001"
    assert main(["train", str(folder), "--use", "v0009"]) == 1
    assert "no version 'v0009'; versions: v0001" in capsys.readouterr().err


def test_generative_is_on_by_default_when_a_class_has_no_labels(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "cli"
    with build_project(folder, count=6, reviewed=5, size=48) as project:
        project.add_class("sand")  # typed, never labelled
    args = ["train", str(folder), "--rounds", "1", "--steps", "20", "--generative-steps", "40"]
    args += TINY
    assert main([*args, "--no-generative", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["generative"] is False and plain["unseen"] == ["sand"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "unseen classes (no human labels): sand; generative step on" in out
    assert "seen mIoU" in out and "unseen mIoU" in out and "hIoU" in out
    with Project.open(folder, read_only=True) as project:
        from training import list_versions

        newest = list_versions(project)[-1]
        sand = next(c.id for c in project.list_classes() if c.name == "sand")
        assert newest.extra["generative"] and sand in newest.extra["class_ids"]
        assert sand not in newest.extra["seen_class_ids"]
