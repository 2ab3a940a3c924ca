"""The headless commands as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.cli import main
from annotator.project import Project


@pytest.fixture
def project_folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("one.png", "two.png"):
        Image.new("RGB", (8, 6), (10, 20, 30)).save(root / name)
    with Project.open(root) as project:
        road, car = project.add_class("road"), project.add_class("car")
        labels = np.full((6, 8), road.id, np.uint8)
        labels[:, 4:] = car.id
        project.save_labels("one.png", labels, status="reviewed")
        project.save_proposal("one.png", np.full((6, 8), road.id, np.uint8), 0.7)
    return root


def test_export_coco_then_import_into_another_folder(
    project_folder: Path, tmp_path: Path, capsys
) -> None:
    assert (
        main(["export", str(project_folder), "--format", "coco", "--out", str(tmp_path / "c.json")])
        == 0
    )
    assert "exported 1 image\n" in capsys.readouterr().out
    document = json.loads((tmp_path / "c.json").read_text())
    assert [c["name"] for c in document["categories"]] == ["road", "car"]
    other = tmp_path / "copy"
    other.mkdir()
    Image.new("RGB", (8, 6)).save(other / "one.png")
    assert main(["import", str(other), str(tmp_path / "c.json"), "--format", "coco"]) == 0
    with Project.open(other) as project:
        labels = project.load_labels("one.png")
        car = project.find_class("car").id
    assert (labels[:, 4:] == car).all()


def test_export_status_filter_and_error_text(project_folder: Path, tmp_path: Path, capsys) -> None:
    args = ["export", str(project_folder), "--format", "masks", "--out", str(tmp_path / "m")]
    assert main([*args, "--status", "edited"]) == 1
    assert "No image" in capsys.readouterr().err
    assert main([*args, "--status", "reviewed,edited"]) == 0


def test_import_voc_with_a_class_file(project_folder: Path, tmp_path: Path, capsys) -> None:
    masks = tmp_path / "SegmentationClass"
    masks.mkdir()
    Image.fromarray(np.ones((6, 8), np.uint8)).save(masks / "two.png")
    (tmp_path / "names.txt").write_text("sky\nwater\n")
    command = [
        "import",
        str(project_folder),
        str(masks),
        "--format",
        "voc",
        "--classes",
        str(tmp_path / "names.txt"),
    ]
    assert main(command) == 0
    with Project.open(project_folder) as project:
        assert project.load_labels("two.png")[0, 0] == project.find_class("water").id
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(masks / "one.png")
    assert main(command) == 1  # nothing imported: one.png has labels, two.png now too
    assert "use --overwrite" in capsys.readouterr().out


def test_eval_folders_json_and_project_table(project_folder: Path, tmp_path: Path, capsys) -> None:
    for folder, values in (("gt", [[0, 1]]), ("pred", [[0, 0]])):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.array(values, np.uint8)).save(tmp_path / folder / "m.png")
    (tmp_path / "names.txt").write_text("a\nb\n")
    args = ["eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]
    assert main([*args, "--classes", str(tmp_path / "names.txt"), "--unseen", "b", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["iou"] == [0.5, 0.0] and report["hiou"] == 0.0
    assert main(["eval", str(project_folder)]) == 0
    out = capsys.readouterr().out
    assert "mIoU 25.00" in out and "road" in out  # road IoU .5, car 0
    assert main(["eval"]) == 1
    assert "Give either a project FOLDER" in capsys.readouterr().err


def test_eval_folder_without_stored_proposals_says_what_to_do(tmp_path: Path, capsys) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(root / "one.png")
    with Project.open(root) as project:
        road = project.add_class("road")
        project.save_labels("one.png", np.full((6, 8), road.id, np.uint8), status="reviewed")
    assert main(["eval", str(root)]) == 1
    assert "nothing to score" in capsys.readouterr().err
